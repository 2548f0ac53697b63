"""Each split's subset depends only on its own size and the seed, so `seqlab evaluate RUN --test-size N`
scores the very reviews that training with `--test-size N` held out, whatever `--train-size` was."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from seqlab.data import imdb
from seqlab.data.sources import DataSource, load_corpus, load_evaluation_split
from seqlab.pipeline import evaluate_run, prepare, train_model
from seqlab.text.encoder import EncoderConfig
from seqlab.training.fit import TrainConfig

pytestmark = pytest.mark.slow  # IMDb itself: the held-out reviews of the real archive


def test_a_splits_subset_does_not_depend_on_the_other_splits_size(imdb_corpus):
    both = imdb_corpus.subset(2_000, 1_000, seed=0)
    assert both.test.texts == imdb_corpus.subset(None, 1_000, seed=0).test.texts
    assert both.test.texts == imdb_corpus.subset(500, 1_000, seed=0).test.texts
    assert both.train.texts == imdb_corpus.subset(2_000, None, seed=0).train.texts
    assert np.bincount(both.test.labels).tolist() == [500, 500]
    assert both.test.texts != imdb_corpus.subset(2_000, 1_000, seed=1).test.texts


@pytest.fixture
def imdb_in_memory(imdb_corpus, monkeypatch, tmp_path):
    """IMDb read once per session: every load of the archive returns the session's corpus."""
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imdb, "load", lambda archive=None, unlabelled=False, download=True: imdb_corpus)


def test_evaluation_draws_the_test_reviews_training_held_out(imdb_in_memory, archive, files):
    source = DataSource(archive=str(archive))
    held_out = load_corpus(source, 2_000, 1_000).test
    evaluated = load_evaluation_split(source, imdb.LABEL_NAMES, 1_000)
    assert evaluated.texts == held_out.texts and np.array_equal(evaluated.labels, held_out.labels)
    # A file with its own test set: training's test subset is evaluation's, token for token.
    train, test = files
    prepared = prepare(DataSource(data=str(train), test_data=str(test)), EncoderConfig(maxlen=80), 120, 40).corpus
    split = load_evaluation_split(DataSource(data=str(test)), prepared.label_names, 40)
    encoded = prepared.encoder.encode(split.texts)
    assert np.array_equal(encoded.ids, prepared.test.encoded.ids) and np.array_equal(split.labels, prepared.test.labels)


def test_evaluating_a_run_with_its_test_size_scores_what_training_scored(imdb_in_memory, archive, tmp_path):
    from seqlab.cli import app

    source = DataSource(archive=str(archive))
    corpus = prepare(source, EncoderConfig(max_features=2_000, maxlen=80), 400, 300).corpus
    _, result = train_model("lstm", corpus, TrainConfig(epochs=1, batch_size=32, validation_split=0.0),
                            out=tmp_path / "run", embedding_dim=16, hidden_size=8)
    scores = evaluate_run(tmp_path / "run", source, test_size=300)
    assert scores["test_reviews"] == 300
    assert scores["accuracy"] == pytest.approx(result.test["accuracy"], abs=1e-9)
    assert scores["loss"] == pytest.approx(result.test["loss"], abs=1e-4)
    printed = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), "--archive", str(archive),
                                       "--test-size", "300", "--json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["accuracy"] == scores["accuracy"]
