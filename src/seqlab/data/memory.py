"""Labelled texts handed over in Python: lists, a pandas DataFrame, a `datasets.Dataset` or `DatasetDict`.

Each row goes through the checks a file's rows go through (data/files.py), and errors name the
row. The content (never an object's identity) is what `content_hash` digests, so equal data
finds the same cache entry however it was built.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

from seqlab.data.config import DataSource
from seqlab.data.files import LabelledTexts, _Collector
from seqlab.errors import DataError

TRAIN, TEST = "train", "test"  # the DatasetDict splits read; any others are left alone


def _is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA/NaT: an empty cell."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ in ("NAType", "NaTType")


def _columns(source: DataSource, origin: str, names: list[str]) -> None:
    missing = [name for name in (source.text_column, source.label_column) if name not in names]
    if missing:
        raise DataError(f"{origin} has no column {' or '.join(map(repr, missing))}; it has "
                        f"{', '.join(map(repr, names)) or 'none'}. Name the columns with text_column= and label_column=")


def _dataset_splits(source: DataSource) -> dict[str, tuple[str, Any]]:
    """split name -> (how errors name it, the split)."""
    dataset = source.dataset
    if hasattr(dataset, "column_names") and not isinstance(dataset.column_names, dict):
        return {TRAIN: ("the dataset", dataset)}
    if not hasattr(dataset, "keys"):
        raise DataError(f"dataset= takes a datasets.Dataset or DatasetDict, not a {type(dataset).__name__}")
    if TRAIN not in dataset:
        raise DataError(f"the DatasetDict has no {TRAIN!r} split (it has {', '.join(map(repr, dataset)) or 'none'}); "
                        f"name the training split {TRAIN!r}")
    return {name: (f"the dataset's {name!r} split", dataset[name]) for name in (TRAIN, TEST) if name in dataset}


def _dataset_labels(dataset: Any, column: str) -> list:
    """A ClassLabel column's numbers become its names, so the run speaks the dataset's own labels."""
    labels = list(dataset[column])
    names = getattr(dataset.features.get(column), "names", None)
    if names:
        labels = [names[label] if isinstance(label, int) and 0 <= label < len(names) else label for label in labels]
    return labels


def columns(source: DataSource) -> dict[str, tuple[str, list, list]]:
    """Per split ('train', and 'test' where the data has one): where it came from, its texts and raw labels."""
    text, label = source.text_column, source.label_column
    if source.texts is not None:
        texts, labels = list(source.texts), list(source.labels or [])
        if len(texts) != len(labels):
            raise DataError(f"texts= has {len(texts)} items but labels= has {len(labels)}; give one label per text")
        return {TRAIN: ("texts", texts, labels)}
    if source.frame is not None:
        frame = source.frame
        if not hasattr(frame, "columns"):
            raise DataError(f"frame= takes a pandas DataFrame, not a {type(frame).__name__}")
        _columns(source, "the DataFrame", [str(name) for name in frame.columns])
        return {TRAIN: ("the DataFrame", frame[text].tolist(), frame[label].tolist())}
    found = {}
    for name, (origin, split) in _dataset_splits(source).items():
        _columns(source, origin, list(split.column_names))
        found[name] = (origin, list(split[text]), _dataset_labels(split, label))
    return found


def read_memory(source: DataSource) -> dict[str, LabelledTexts]:
    """Every split's texts and labels, checked row by row as a file's are."""
    read = {}
    for name, (origin, texts, labels) in columns(source).items():
        if not texts:
            raise DataError(f"{origin} holds no rows; give at least one labelled text per class")
        collector = _Collector(origin, source.table_options)  # type: ignore[arg-type]
        collector.unit = "row"
        for row, (text, label) in enumerate(zip(texts, labels)):
            collector.add(row, None if _is_missing(text) else text, None if _is_missing(label) else label)
        read[name] = collector.result()
    return read


def _cells(texts: list, labels: list) -> Iterator[bytes]:
    for text, label in zip(texts, labels):
        yield json.dumps([text, label], default=repr, ensure_ascii=False).encode()


def content_hash(source: DataSource) -> dict[str, str]:
    """sha256 of each split's texts and labels, in order (numbers and names kept apart)."""
    digests = {}
    for name, (_, texts, labels) in columns(source).items():
        digest = hashlib.sha256(f"{len(texts)}\0".encode())
        for cell in _cells(texts, labels):
            digest.update(cell + b"\n")
        digests[name] = digest.hexdigest()
    return digests
