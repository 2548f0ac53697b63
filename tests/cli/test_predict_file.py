"""`seqlab predict RUN --file PATH` streams one answer per line; --top-k/--threshold on multi-class runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import seqlab
from seqlab.errors import ConfigError
from seqlab.predict import load

CLASSES = ("bad", "fine", "great")


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory, synthetic_corpus):
    """A fastText-model run with three classes (the synthetic texts, labels cycled)."""
    texts = synthetic_corpus.train.texts[:150]
    labels = [CLASSES[i % 3] for i in range(len(texts))]
    corpus = seqlab.prepare(seqlab.DataSource(texts=texts, labels=labels), cache=False).corpus
    out = tmp_path_factory.mktemp("three") / "run"
    seqlab.train_model("fasttext", corpus, seqlab.TrainConfig(epochs=1, batch_size=64, validation_split=0), out=out,
                       embedding_dim=8)
    return out


def test_top_k_and_threshold_in_the_predictor(three_classes):
    predictor = load(three_classes)
    [plain] = predictor.predict(["a dull film"])
    assert plain.top is None and "top" not in plain.to_dict()  # without the options, the answer is unchanged
    [two] = predictor.predict(["a dull film"], top_k=2)
    ranked = sorted(plain.probabilities.items(), key=lambda item: -item[1])
    assert [label for label, _ in two.top] == [label for label, _ in ranked[:2]]
    assert two.top[0] == (plain.label, plain.probability)
    middle = ranked[1][1]
    [kept] = predictor.predict(["a dull film"], threshold=middle)
    assert [label for label, _ in kept.top] == [label for label, _ in ranked[:2]]
    assert predictor.predict(["a dull film"], top_k=1, threshold=1.0)[0].top == ()
    with pytest.raises(ConfigError, match="top_k must be at least 1"):
        predictor.predict(["x"], top_k=0)


def test_binary_runs_refuse_top_k(synthetic_run):
    with pytest.raises(ConfigError, match="top_k picks among the classes of a multi-class run; this run has 2"):
        load(synthetic_run).predict(["x"], top_k=1)


def test_file_gives_one_line_per_text_in_order(three_classes, tmp_path, seqlab_here, monkeypatch):
    monkeypatch.setattr("seqlab.cli.predict.FILE_BATCH", 2)  # several batches
    texts = ["a wonderful film", "", "dull and boring", "caf\ufffd", "the plot"]
    path = tmp_path / "texts.txt"
    path.write_bytes(b"a wonderful film\n\ndull and boring\r\ncaf\xe9\nthe plot")
    result = seqlab_here("predict", str(three_classes), "--file", str(path), "--json", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [row["text"] for row in rows] == texts  # the bad byte replaced, the empty line kept
    expected = load(three_classes).predict(texts, top_k=2)
    assert [row["label"] for row in rows] == [p.label for p in expected]
    assert np.allclose([row["top"][1]["probability"] for row in rows], [p.top[1][1] for p in expected])
    plain = seqlab_here("predict", str(three_classes), "--file", "-", stdin=b"one\ntwo\n")
    lines = plain.stdout.decode().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[0] in CLASSES for line in lines)


def test_file_errors_are_one_line(three_classes, tmp_path, seqlab_here, synthetic_run):
    missing = seqlab_here("predict", str(three_classes), "--file", str(tmp_path / "none.txt"))
    assert missing.returncode == 3 and b"no file at" in missing.stderr
    both = seqlab_here("predict", str(three_classes), "a text", "--file", "-")
    assert both.returncode == 2 and b"texts or --file, not both" in both.stderr
    binary = seqlab_here("predict", str(synthetic_run), "--threshold", "0.5", "a text")
    assert binary.returncode == 2 and b"threshold picks among the classes" in binary.stderr
    assert len(binary.stderr.decode().strip().splitlines()) == 1
