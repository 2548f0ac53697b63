"""`seqlab evaluate`: test a saved run on labelled texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqlab.cli.options import (Archive, DataFormat, LabelColumn, Precision, ReplaceInvalid, TestSize, TextColumn,
                                data_source, default)
from seqlab.cli.output import console, print_json
from seqlab.data.config import DataSource


def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    archive: Archive = None,
    test_size: TestSize = None,
    precision: Precision = "float32",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data: Annotated[str, typer.Option(help="'imdb' (its test reviews), or a file/folder whose every text is tested.")] = default(DataSource, "data"),
    text_column: TextColumn = default(DataSource, "text_column"),
    label_column: LabelColumn = default(DataSource, "label_column"),
    replace_invalid: ReplaceInvalid = False,
    format: DataFormat = None,
) -> None:
    """Test a saved run on labelled texts (IMDb's test reviews by default), with the run's own encoder;
    --test-size N scores the N test reviews that training with --test-size N held out."""
    from seqlab.pipeline import evaluate_run

    source = data_source(data, None, text_column, label_column, replace_invalid, 0.2, archive, format)
    result = evaluate_run(run, source, test_size, precision)
    if json_output:
        print_json(result)
    else:
        console.print(f"{run}: test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f} on "
                      f"{result['test_reviews']:,} texts")
        console.print("recall per class: " + ", ".join(f"{name} {value:.3f}" for name, value in result["recall"].items()
                                                      if value is not None))
