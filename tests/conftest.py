"""One small real-review fixture, read once per session from the IMDb archive."""

from __future__ import annotations

import os
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
    path = Path(os.environ.get("SEQLAB_IMDB_ARCHIVE") or SHARED_ARCHIVE)
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
