"""One small real-review fixture, read once per session from the IMDb archive."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"


def pytest_configure(config):
    # Keep the tokenized-data cache of a test session out of the user's cache.
    if "SEQLAB_CACHE" not in os.environ:
        os.environ["SEQLAB_CACHE"] = str(Path(config.rootpath) / ".pytest_cache" / "seqlab")


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
    """A few hundred encoded reviews for fast checks that need real text but no learning."""
    import numpy as np
    from dataclasses import replace

    return replace(reviews, train=reviews.train.take(np.arange(600)), test=reviews.test.take(np.arange(300)))


@contextmanager
def torch_threads(count: int):
    """Run with `count` PyTorch threads. On this shared 2-core machine, 2 threads on small batches can run
    1000x slower than 1 while other jobs hold a core (each step waits for the descheduled thread)."""
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
def trained_run(tmp_path_factory, reviews) -> Path:
    """A small LSTM trained on the 12,000 reviews (2 epochs, ~10 s; ~85% test accuracy), saved as a run directory."""
    import seqlab

    out = tmp_path_factory.mktemp("trained") / "small-lstm"
    with torch_threads(1):
        seqlab.train_model("lstm", reviews, seqlab.TrainConfig(epochs=2, batch_size=64, validation_split=0.0), out=out,
                           embedding_dim=32, hidden_size=16)
    return out
