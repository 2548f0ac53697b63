"""`seqlab data prepare`: tokenize a corpus once into memory-mapped arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqlab.cli.options import MaxFeatures, Maxlen, Padding, Truncating, default, encoder_config
from seqlab.cli.output import console
from seqlab.data.config import DataSource
from seqlab.errors import DataError
from seqlab.text.config import EncoderConfig


def data_prepare(
    data: Annotated[Path, typer.Argument(help="The corpus: an IMDb archive (aclImdb_v1.tar.gz).")],
    out: Annotated[Path, typer.Option(help="Folder for the arrays, encoder.json and manifest.json.")],
    max_features: MaxFeatures = default(EncoderConfig, "max_features"),
    maxlen: Maxlen = default(EncoderConfig, "maxlen"),
    truncating: Truncating = default(EncoderConfig, "truncating"),
    padding: Padding = default(EncoderConfig, "padding"),
    workers: Annotated[Optional[int], typer.Option(help="Encoding processes (default: one per CPU core).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Texts per chunk (the unit of parallel work and of resuming).")] = 20_000,
) -> None:
    """Tokenize DATA once into memory-mapped arrays; a rerun after an interruption resumes."""
    import time

    from seqlab.text.prepared import open_prepared, prepare_source

    if not data.is_file():
        raise DataError(f"no file at {data}; give the path of aclImdb_v1.tar.gz")
    started = time.perf_counter()
    prepare_source(DataSource(archive=str(data)), out, encoder_config(max_features, maxlen, truncating, padding),
                   chunk_size=chunk_size, workers=workers,
                   progress=lambda stage, done, total: console.print(f"{stage}: {done:,}/{total:,} texts", end="\r"))
    prepared = open_prepared(out)
    console.print(f"\nPrepared {len(prepared.train):,} training and {len(prepared.test):,} test texts "
                  f"({int(prepared.train.lengths.sum() + prepared.test.lengths.sum()):,} tokens) in {out} "
                  f"in {time.perf_counter() - started:.1f} s; train with `seqlab train MODEL --prepared {out}`")
