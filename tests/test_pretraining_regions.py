"""`seqlab pretrain --objective region-embedding` and the seq-cnn fine-tuned from it, on the synthetic
corpus (no archive)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import safetensors.torch
import torch

from seqlab.data.config import DataSource
from seqlab.errors import ConfigError
from seqlab.pretraining import PretrainRecipe, default_training, pretrain
from seqlab.recipes import Recipe, train_recipe
from seqlab.text.config import EncoderConfig
from seqlab.training.config import TrainConfig

REGIONS = "region-embedding"


def _data(synthetic_csv: Path) -> DataSource:
    return DataSource(data=str(synthetic_csv / "train.csv"), test_data=str(synthetic_csv / "test.csv"))


def _recipe(synthetic_csv: Path, **training) -> PretrainRecipe:
    return PretrainRecipe(objective=REGIONS, model={"dimension": 8}, encoder=EncoderConfig(maxlen=60, max_features=1000),
                          training=replace(default_training(REGIONS), validation_split=0.1, **training),
                          data=_data(synthetic_csv))


@pytest.fixture(scope="module")
def regions(synthetic_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrained") / "regions"
    pretrain(_recipe(synthetic_csv, epochs=3), out)
    return out


def _finetune(synthetic_csv: Path, run: Path, model: str = "seq-cnn", **options) -> Recipe:
    return Recipe(model=model, model_options={"hidden_size": 16, **options},
                  encoder=EncoderConfig(maxlen=60), data=_data(synthetic_csv), init_from=str(run),
                  training=TrainConfig(epochs=4, batch_size=32, validation_split=0.1, learning_rate=0.01))


def test_region_pretraining_writes_a_run_with_its_loss_history(regions):
    history = json.loads((regions / "history.json").read_text())
    assert len(history["val_loss"]) == 3 and not history["val_perplexity"]
    # It fits which words surround which regions (the synthetic texts' word order is random, so only
    # the training loss falls; tests/test_pretraining_learning.py checks what it learns from reviews).
    assert history["loss"][-1] < history["loss"][0]
    config = json.loads((regions / "config.json").read_text())
    assert config["model"]["name"] == REGIONS and config["model"]["config"]["dimension"] == 8
    weights = safetensors.torch.load_file(regions / "model.safetensors")
    assert weights["embedding.weight"].shape == (config["model"]["config"]["vocab_size"], 8) and "output.weight" in weights
    assert torch.all(weights["noise"][:53] == 0) and weights["noise"][53:].sum() > 0  # reserved + 50 frequent


def test_a_seq_cnn_fine_tuned_from_regions_keeps_them_fixed_and_is_an_ordinary_run(regions, synthetic_csv, tmp_path,
                                                                                   check_ordinary_run):
    from seqlab.text.encoder import TextEncoder

    _, result = train_recipe(_finetune(synthetic_csv, regions), tmp_path / "tuned")
    run = result.run_directory
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["config"]["context_dim"] == 8 and config["data"]["init_from"] == str(regions.resolve())
    tuned = safetensors.torch.load_file(run / "model.safetensors")
    pretrained = safetensors.torch.load_file(regions / "model.safetensors")
    source = TextEncoder.load(regions).tokenizer.get_vocab()
    target = TextEncoder.load(run).tokenizer.get_vocab()
    assert target == source  # the classifier reads texts with the words the region embedding learned
    shared = [word for word, token_id in target.items() if token_id > 2]
    assert len(shared) > 100
    for word in shared:  # copied, and never trained
        assert torch.equal(tuned["context_embedding"][target[word]], pretrained["embedding.weight"][source[word]]), word
    assert torch.equal(tuned["context_bias"], pretrained["bias"])
    assert tuned["context"].abs().sum() > 0
    check_ordinary_run(run, _data(synthetic_csv), ["a fine film", "dull and bad"], min_accuracy=0.6)


def test_init_from_pairs_each_kind_of_run_with_its_models(regions, synthetic_csv, tmp_path):
    from seqlab.training.finetune import body_options

    with pytest.raises(ConfigError, match="which seq-cnn fine-tunes, not lstm"):
        train_recipe(_finetune(synthetic_csv, regions, model="lstm"), tmp_path / "lstm")
    with pytest.raises(ConfigError, match="brings its vocabulary of .* words; drop --max-features 500"):
        train_recipe(replace(_finetune(synthetic_csv, regions), encoder=EncoderConfig(max_features=500)), tmp_path / "v")
    with pytest.raises(ConfigError, match="context-dim 8"):
        body_options(regions, {"context_dim": 4}, "seq-cnn")
    lm = pretrain(PretrainRecipe(model={"embedding_dim": 8, "hidden_size": 8, "cutoffs": [200]},
                                 encoder=EncoderConfig(maxlen=40, max_features=500), data=_data(synthetic_csv),
                                 training=replace(default_training(), validation_split=0.0)), tmp_path / "lm")
    with pytest.raises(ConfigError, match="language-model run, which lstm, gru"):
        body_options(lm.run_directory, {}, "seq-cnn")


def test_region_pretrain_command(synthetic_csv, tmp_path):
    from typer.testing import CliRunner

    from seqlab.cli import app

    out = tmp_path / "regions"
    result = CliRunner().invoke(app, ["pretrain", "--objective", REGIONS, "--data", str(synthetic_csv / "train.csv"),
                                      "--out", str(out), "--embedding-dim", "6", "--maxlen", "40", "--validation-split", "0.1"])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert "validation loss" in printed and "(MODEL: seq-cnn)" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["config"]["dimension"] == 6 and config["encoder"]["max_features"] == 30_000
    assert config["training"]["batch_size"] == 32  # the objective's defaults where none was given
    for arguments, message in ((["--objective", "words"], "--objective must be one of"),
                               (["--objective", REGIONS, "--hidden-size", "8"], "--hidden-size shape the language model")):
        bad = CliRunner().invoke(app, ["pretrain", "--data", str(synthetic_csv / "train.csv"), *arguments])
        assert isinstance(bad.exception, ConfigError) and message in str(bad.exception), bad.output
