"""Pretraining really helps: on 1,000 labelled reviews, a seq-cnn fine-tuned from region embeddings and an
LSTM over word vectors, both pretrained on the unlabelled reviews, beat the same models trained from
scratch; one fine-tuned from a language model pretrained briefly does not yet (slow: real reviews)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from seqlab.data.config import DataSource
from seqlab.pretraining import PretrainRecipe, default_training, pretrain
from seqlab.recipes import Recipe, train_recipe
from seqlab.text.config import EncoderConfig
from seqlab.training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
MARGIN = 0.03  # fine-tuned test accuracy at least this much above from-scratch
ENCODER = EncoderConfig(maxlen=120, max_features=5_000)
REGION_ENCODER = EncoderConfig(maxlen=2500, max_features=30_000)  # whole reviews, the pretraining's vocabulary
SMALL = TrainConfig(epochs=5, batch_size=32, learning_rate=3e-3, validation_split=0.1, restore_best=True,
                    monitor="val_accuracy")  # 900 reviews to learn from, the epoch kept by the other 100


REGIONS_MARGIN = 0.05  # the seq-cnn fine-tuned from region embeddings, above the seq-cnn from scratch


@pytest.mark.slow
def test_region_embedding_pretraining_beats_training_from_scratch_on_300_reviews(archive, tmp_path):
    """`seqlab pretrain --objective region-embedding` as it comes (one pass over the training + 50,000
    unlabelled reviews, never the test ones; about 3-4 minutes), then `seqlab train seq-cnn --init-from` on
    300 training reviews, scored on 1,000 test reviews. Measured: 0.832 / 0.828 against 0.728 / 0.500 from
    scratch (seeds 42 / 1; on 1,000 reviews the gain is smaller: docs/pretraining.md)."""
    data = DataSource(archive=str(archive))
    regions = pretrain(PretrainRecipe(objective="region-embedding", data=data), tmp_path / "regions")
    accuracy = {}
    for name, init_from in (("scratch", None), ("regions", str(regions.run_directory))):
        recipe = Recipe(model="seq-cnn", model_options={"hidden_size": 500}, encoder=REGION_ENCODER, data=data,
                        train_size=300, test_size=1_000, init_from=init_from,
                        training=TrainConfig(epochs=8, batch_size=50, learning_rate=1e-3, validation_split=0.1,
                                             restore_best=True, monitor="val_accuracy"))
        accuracy[name] = train_recipe(recipe, tmp_path / name)[1].test["accuracy"]
    assert accuracy["regions"] >= accuracy["scratch"] + REGIONS_MARGIN, accuracy


@pytest.mark.slow
def test_word2vec_pretraining_beats_training_from_scratch_on_1000_reviews(archive, tmp_path):
    """word2vec on the training + 50,000 unlabelled reviews (never the test ones), held fixed under an LSTM."""
    data, encoder = DataSource(archive=str(archive)), EncoderConfig(maxlen=200, max_features=10_000)
    accuracy = {}
    for name, embeddings in (("scratch", None), ("word2vec", "word2vec")):
        options = {"pooling": "max", "embedding_dim": 128} | ({"freeze_embeddings": True} if embeddings else {})
        recipe = Recipe(model="lstm", model_options=options, encoder=encoder, data=data, train_size=1_000,
                        test_size=1_000, embeddings=embeddings, training=SMALL)
        model, result = train_recipe(recipe, tmp_path / name)
        accuracy[name] = result.test["accuracy"]
        assert model.embedding.weight.requires_grad is (embeddings is None)
    assert accuracy["word2vec"] >= accuracy["scratch"] + MARGIN, accuracy


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue #20, not reached yet: a language model pretrained for about a minute "
                   "does not yet beat training from scratch on 1,000 reviews; a linear probe (bench/probe.py) finds "
                   "little sentiment in its states (docs/pretraining.md, 'Measured'; word2vec vectors do beat scratch, "
                   "the test above); strict, so the day it passes "
                   "this mark must go")
def test_pretraining_beats_training_from_scratch_on_1000_reviews(archive, tmp_path):
    data = DataSource(archive=str(archive))
    lm = pretrain(PretrainRecipe(model={"hidden_size": 64, "embedding_dim": 32, "cutoffs": [1_000]}, encoder=ENCODER,
                                 data=data, texts=4_000, training=replace(default_training(), epochs=1)),
                  tmp_path / "lm")
    assert lm.val_perplexity < 1_000
    accuracy = {}
    for name, init_from in (("scratch", None), ("pretrained", str(lm.run_directory))):
        options = {"pooling": "max"} | ({} if init_from else {"hidden_size": 64, "embedding_dim": 32})
        recipe = Recipe(model="lstm", model_options=options, encoder=ENCODER, data=data, train_size=1_000,
                        test_size=1_000, init_from=init_from,
                        training=TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3, validation_split=0.1,
                                             schedule="slanted", restore_best=True, monitor="val_accuracy"))
        accuracy[name] = train_recipe(recipe, tmp_path / name)[1].test["accuracy"]
    assert accuracy["pretrained"] >= accuracy["scratch"] + MARGIN, accuracy


@pytest.mark.slow
def test_pretrain_benchmark_quick_mode_runs(archive, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "pretrain.py"), "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900,
                            env={"SEQLAB_IMDB_ARCHIVE": str(archive), "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(ROOT / "src"),
                                 "SEQLAB_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "| pretrain budget min |" in result.stdout
    import json

    data = json.loads((ROOT / "bench" / "results" / "pretrain-quick.json").read_text())
    point = data["points"][0]
    assert set(point["stages"]) == {"pretrain", "finetune"} and 0 <= point["test_accuracy"] <= 1


@pytest.mark.slow
def test_seq_cnn_recipe_quick_mode_runs(archive, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "pretrain.py"), "--recipe", "seq-cnn", "--quick",
                             "--seq-cnn", "epochs=1", "--seq-cnn", "regions=false", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900,
                            env={"SEQLAB_IMDB_ARCHIVE": str(archive), "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(ROOT / "src"), "SEQLAB_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "| first sentence | last sentence |" in result.stdout
    import json

    point = json.loads((ROOT / "bench" / "results" / "pretrain-seq-cnn-quick.json").read_text())["points"][0]
    assert point["epochs"] == 1 and point["pretrain_minutes"] == 0 and 0 <= point["test_accuracy"] <= 1 \
        and point["cpu_seconds"] > 0
    tuned = subprocess.run([sys.executable, str(ROOT / "bench" / "pretrain.py"), "--recipe", "seq-cnn", "--quick",
                            "--seq-cnn", "epochs=1", "--out", str(tmp_path / "regions")],
                           capture_output=True, text=True, timeout=900,
                           env={"SEQLAB_IMDB_ARCHIVE": str(archive), "PATH": "/usr/bin:/bin",
                                "PYTHONPATH": str(ROOT / "src"), "SEQLAB_CACHE": str(tmp_path / "cache")})
    assert tuned.returncode == 0, tuned.stderr
    point = json.loads((ROOT / "bench" / "results" / "pretrain-seq-cnn-quick.json").read_text())["points"][0]
    assert point["pretrain_minutes"] > 0 and 0 <= point["test_accuracy"] <= 1
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "pretrain.py"), "--recipe", "seq-cnn", "--seq-cnn",
                          "width=3"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                          "PYTHONPATH": str(ROOT / "src")})
    assert bad.returncode == 2 and "--seq-cnn takes KEY=VALUE" in bad.stderr
