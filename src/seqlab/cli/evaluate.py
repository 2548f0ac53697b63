"""`seqlab evaluate`: test a saved run on labelled texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from seqlab.cli.options import (Archive, LabelColumn, Precision, ReplaceInvalid, TestSize, TextColumn, data_source,
                                default)
from seqlab.cli.output import console
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
) -> None:
    """Test a saved run on labelled texts (IMDb's test reviews by default), with the run's own encoder."""
    from seqlab.data.corpus import Corpus
    from seqlab.data.sources import load_evaluation_split
    from seqlab.predict import load

    predictor = load(run, precision=precision)
    source = data_source(data, None, text_column, label_column, replace_invalid, 0.2, archive)
    split = load_evaluation_split(source, predictor.label_names)
    if test_size is not None:
        split = Corpus("evaluation", split, split, predictor.label_names, "").subset(None, test_size, seed=0).test
    scores = predictor.evaluate(split.texts, split.labels)
    accuracy, loss, recall = scores["accuracy"], scores["loss"], scores["recall"]
    result = {"run": str(run), "test_reviews": len(split.labels), "accuracy": accuracy, "loss": loss, "recall": recall}
    if json_output:
        console.print_json(json.dumps(result))
    else:
        console.print(f"{run}: test accuracy {accuracy:.4f}, test loss {loss:.4f} on {len(split.labels):,} texts")
        console.print("recall per class: " + ", ".join(f"{name} {value:.3f}" for name, value in recall.items()
                                                      if value is not None))
