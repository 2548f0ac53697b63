"""Fixtures shared by the test suite: a synthetic corpus for unit tests, real IMDb reviews for the rest.

Test tiers
----------
fast   ``pytest -m "not slow"``: unit tests. They read no archive: texts come from the test itself
       or from the synthetic corpus made below, deterministically (fixtures ``synthetic_corpus``,
       its encoding ``synthetic``, ``synthetic_csv``, and ``synthetic_run``, a small model trained
       on it). Run it while working.
slow   ``pytest -m slow``: tests marked ``slow``, i.e. those that need the IMDb archive (the
       fixtures ``archive``, ``imdb_corpus``, ``reviews``, ``tiny_reviews``, ``trained_run``),
       train for seconds (learning on real reviews, resuming), start another process (a real
       server: ``limited_server``, ``served``, ``seqlab serve``; a browser; torchrun; a child
       killed mid-checkpoint; the ``seqlab`` command in a subprocess), or run a benchmark
       script or the lecture. One subprocess stays fast: the check that ``--help`` imports
       nothing heavy, which needs a fresh interpreter. What a command answers is tested in
       this process (``seqlab_here``), a server's answers through FastAPI's TestClient.
all    plain ``pytest`` (``make test``, CI): both tiers.

A test that needs the archive without being marked slow stops the session at collection, so the
fast tier stays runnable without the archive. The archive is $SEQLAB_IMDB_ARCHIVE or
../shared/data/aclImdb_v1.tar.gz; a slow test that cannot find it fails rather than skips.
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"
ARCHIVE_FIXTURE = "archive"  # every real-review fixture depends on it

# The synthetic corpus: each class has its own pool of sentiment words; filler words are shared.
# Real English words, so that tests can type a review ("A wonderful film") at a model trained on it.
POSITIVE_WORDS = ("excellent", "wonderful", "superb", "great", "brilliant", "moving", "beautiful", "best", "loved",
                  "delightful", "charming", "fine")
NEGATIVE_WORDS = ("awful", "boring", "dull", "predictable", "worst", "terrible", "waste", "bad", "dreadful", "weak",
                  "tedious", "poor")
FILLER_WORDS = ("the", "a", "an", "film", "movie", "story", "plot", "cast", "acting", "ending", "scene", "music",
                "director", "script", "characters", "and", "but", "was", "is", "it", "this", "with", "of", "too",
                "far", "long", "very", "quite", "only", "bit", "i", "one", "at", "for", "its", "part")
SYLLABLES = ("ka", "lo", "mi", "zu", "re", "po", "sa", "ti", "ven", "dor", "bel", "qu")
SYNTHETIC_SIZES = {"train": 600, "test": 300}  # as tiny_reviews, which it replaces in unit tests


def pytest_configure(config):
    # Keep the tokenized-data cache of a test session out of the user's cache.
    if "SEQLAB_CACHE" not in os.environ:
        os.environ["SEQLAB_CACHE"] = str(Path(config.rootpath) / ".pytest_cache" / "seqlab")


def pytest_collection_modifyitems(config, items):
    """Refuse a test that needs the archive but is not marked slow: the fast tier must run without it."""
    unmarked = [item.nodeid for item in items
                if ARCHIVE_FIXTURE in item.fixturenames and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("these tests need the IMDb archive but are not marked slow (add @pytest.mark.slow, "
                                "or use the synthetic fixtures):\n  " + "\n  ".join(unmarked))


# ---- synthetic texts (the fast tier) ----

def synthetic_text(rng: np.random.Generator, label: int) -> str:
    """A review-like text: filler words, sentiment words mostly (not only) from the label's pool, and
    now and then a made-up rare word, so a model can learn the classes but short texts stay ambiguous."""
    own, other = (NEGATIVE_WORDS, POSITIVE_WORDS) if label == 0 else (POSITIVE_WORDS, NEGATIVE_WORDS)
    length = int(rng.integers(150, 260)) if rng.random() < 0.1 else int(rng.integers(3, 60))
    words = []
    for _ in range(length):
        draw = rng.random()
        if draw < 0.2:
            pool = own if rng.random() < 0.75 else other
            words.append(pool[rng.integers(len(pool))])
        elif draw < 0.23:  # a word of the long tail: tests can meet words the vocabulary never saw
            words.append("".join(SYLLABLES[i] for i in rng.integers(len(SYLLABLES), size=3)))
        else:
            words.append(FILLER_WORDS[rng.integers(len(FILLER_WORDS))])
    sentences = [" ".join(words[start:start + 9]) for start in range(0, length, 9)]
    return ". ".join(sentence.capitalize() for sentence in sentences) + "."


def make_synthetic_corpus(seed: int = 0):
    """600 training and 300 test texts, classes balanced, no text repeated; labels 'negative', 'positive'."""
    from seqlab.data.corpus import Corpus, Split

    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    splits = {}
    for name, size in SYNTHETIC_SIZES.items():
        labels = rng.permutation(np.arange(size) % 2).astype(np.int64)
        texts = []
        for label in labels:
            text = synthetic_text(rng, int(label))
            while text in seen:
                text = synthetic_text(rng, int(label))
            seen.add(text)
            texts.append(text)
        splits[name] = Split(texts, labels)
    return Corpus(name="synthetic", train=splits["train"], test=splits["test"], label_names=("negative", "positive"),
                  fingerprint=f"synthetic:1:{seed}")


def write_csv(path: Path, split, label_names) -> Path:
    """`split` as a CSV with columns text and label (the label's name), as `seqlab train --data` reads it."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((text, label_names[int(label)]) for text, label in zip(split.texts, split.labels))
    return path


@pytest.fixture(scope="session")
def synthetic_corpus():
    """The synthetic corpus as a seqlab.data.corpus.Corpus (texts, not yet encoded)."""
    return make_synthetic_corpus()


@pytest.fixture(scope="session")
def synthetic(synthetic_corpus):
    """The synthetic corpus encoded with the lecture's settings (an EncodedCorpus): a stand-in for tiny_reviews."""
    from seqlab.text.cache import encode_corpus
    from seqlab.text.encoder import EncoderConfig

    return encode_corpus(synthetic_corpus, EncoderConfig())


@pytest.fixture(scope="session")
def synthetic_csv(synthetic_corpus, tmp_path_factory) -> Path:
    """A folder holding the synthetic corpus as train.csv and test.csv, for `--data` and `--test-data`."""
    folder = tmp_path_factory.mktemp("synthetic-csv")
    for name in ("train", "test"):
        write_csv(folder / f"{name}.csv", getattr(synthetic_corpus, name), synthetic_corpus.label_names)
    return folder


@contextmanager
def torch_threads(count: int):
    """Run with `count` PyTorch threads. On a shared machine, 2 threads on small batches can run far
    slower than 1 while other jobs hold a core (each step waits for the descheduled thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory, synthetic) -> Path:
    """A small LSTM trained on the synthetic corpus, saved as a run directory: a real run to load,
    serve, export and explain, quick to make."""
    import seqlab

    out = tmp_path_factory.mktemp("synthetic-run") / "small-lstm"
    with torch_threads(1):
        seqlab.train_model("lstm", synthetic, seqlab.TrainConfig(epochs=6, batch_size=32, learning_rate=0.01,
                                                                         validation_split=0.0),
                           out=out, embedding_dim=16, hidden_size=16)
    return out


# ---- real reviews (the slow tier) ----

@pytest.fixture(scope="session")
def archive() -> Path:
    """The IMDb archive: $SEQLAB_IMDB_ARCHIVE or ../shared/data/aclImdb_v1.tar.gz. Missing is a failure, not a skip."""
    path = Path(os.environ.get("SEQLAB_IMDB_ARCHIVE") or SHARED_ARCHIVE).resolve()  # tests may change directory
    if not path.is_file():
        pytest.fail(f"IMDb archive not found at {path}: set SEQLAB_IMDB_ARCHIVE to a copy of aclImdb_v1.tar.gz")
    return path


@pytest.fixture(scope="session")
def imdb_corpus(archive):
    from seqlab.data import load_imdb

    return load_imdb(archive)


@pytest.fixture(scope="session")
def reviews(imdb_corpus):
    """12,000 training and 2,000 test reviews (class-balanced), encoded with the lecture's settings."""
    from seqlab.text.cache import encode_corpus
    from seqlab.text.encoder import EncoderConfig

    return encode_corpus(imdb_corpus.subset(12_000, 2_000, seed=0), EncoderConfig())


@pytest.fixture(scope="session")
def tiny_reviews(reviews):
    """A few hundred encoded real reviews, for checks that need real text but no learning."""
    from dataclasses import replace

    return replace(reviews, train=reviews.train.take(np.arange(600)), test=reviews.test.take(np.arange(300)))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, reviews) -> Path:
    """A small LSTM trained on the 12,000 real reviews for 2 epochs, saved as a run directory."""
    import seqlab

    out = tmp_path_factory.mktemp("trained") / "small-lstm"
    with torch_threads(1):
        seqlab.train_model("lstm", reviews, seqlab.TrainConfig(epochs=2, batch_size=64, validation_split=0.0), out=out,
                           embedding_dim=32, hidden_size=16)
    return out


def seqlab_in_process(*args: str, stdin: bytes = b"") -> "subprocess.CompletedProcess[bytes]":
    """`seqlab ARGS` run by its entry point in this process, as a subprocess's result (exit code, and
    stdout/stderr as bytes): the same code path without an interpreter's start-up and imports, for
    tests of what the command answers. Tests of the installed entry point itself use a real subprocess."""
    import io
    import subprocess
    import sys

    from seqlab.cli import main
    from seqlab.cli.output import console, errors

    out, err = io.BytesIO(), io.BytesIO()
    streams = (io.TextIOWrapper(out, encoding="utf-8"), io.TextIOWrapper(err, encoding="utf-8"),
               io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    saved = sys.argv, sys.stdout, sys.stderr, sys.stdin, console.width, errors.width
    sys.argv, (sys.stdout, sys.stderr, sys.stdin) = ["seqlab", *args], streams
    console.width = errors.width = 200
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        streams[0].flush()
        streams[1].flush()
        sys.argv, sys.stdout, sys.stderr, sys.stdin, console.width, errors.width = saved
    return subprocess.CompletedProcess(["seqlab", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def seqlab_here():
    """seqlab_in_process, for tests of what a command answers (no interpreter start-up)."""
    return seqlab_in_process


@pytest.fixture
def check_ordinary_run():
    """A checker that a run directory (e.g. a fine-tuned one) works with every tool unchanged: predict,
    evaluate on `data`, explain, serve (/v1/predict answers what the predictor does) and the ONNX export
    (its predictions within 1e-4 of PyTorch's)."""

    def check(run: Path, data, texts: list[str], min_accuracy: float) -> None:
        from fastapi.testclient import TestClient

        from seqlab.explain import explain
        from seqlab.export import export_onnx
        from seqlab.pipeline import evaluate_run
        from seqlab.predict import load
        from seqlab.serve.app import create_app, load_predictors

        predictor = load(run)
        assert len(predictor.predict(texts)) == len(texts)
        assert evaluate_run(run, data)["accuracy"] > min_accuracy
        assert explain(predictor, texts[0])
        with TestClient(create_app(load_predictors([str(run)]))) as client:
            response = client.post("/v1/predict", json={"texts": texts})
        assert response.status_code == 200
        assert response.json()["predictions"] == [p.to_dict() for p in predictor.predict(texts)]
        export_onnx(run)
        onnx_predictor = load(run, backend="onnx")
        assert onnx_predictor.backend.name == "onnxruntime"
        assert np.abs(onnx_predictor.predict_proba(texts) - predictor.predict_proba(texts)).max() < 1e-4

    return check


@pytest.fixture
def padded_ids():
    """A maker of random batches: ids (batch, time) drawn from [3, vocab), 0 past each of `lengths`, and the lengths."""
    import torch

    def make(vocab: int, lengths: list[int], seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        lengths_tensor = torch.tensor(lengths)  # (batch,)
        ids = torch.randint(3, vocab, (len(lengths), max(lengths)), generator=generator)  # (batch, time)
        ids[torch.arange(max(lengths)).unsqueeze(0) >= lengths_tensor.unsqueeze(1)] = 0
        return ids, lengths_tensor

    return make
