"""A small labelled CSV pair (synthetic texts) for the data tests: train.csv and test.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


def write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path, synthetic_corpus, monkeypatch):
    """202 training rows (two of them repeats) and 61 test rows (one of them a training text)."""
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    small = synthetic_corpus.subset(200, 60, seed=5)
    names = small.label_names
    train = [(t, names[int(l)]) for t, l in zip(small.train.texts, small.train.labels)]
    test = [(t, names[int(l)]) for t, l in zip(small.test.texts, small.test.labels)]
    train += [train[0], train[1]]  # two duplicates
    test += [train[5]]  # one text in both
    return write_csv(tmp_path / "train.csv", train), write_csv(tmp_path / "test.csv", test)
