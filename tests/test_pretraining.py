"""`seqlab pretrain` and fine-tuning with --init-from, on the synthetic corpus (no archive)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from seqlab.data.config import DataSource
from seqlab.errors import ConfigError, RunError
from seqlab.pretraining import PretrainRecipe, default_training, pretrain, resume_pretraining
from seqlab.recipes import Recipe, resume, train_recipe
from seqlab.text.config import EncoderConfig
from seqlab.training.checkpoint import Checkpointer, checkpoint_directory
from seqlab.training.config import TrainConfig

SMALL_LM = {"embedding_dim": 16, "hidden_size": 24, "cutoffs": [200]}


SMALL = {"language-model": SMALL_LM, "region-embedding": {"dimension": 8}}


def _recipe(synthetic_csv: Path, objective: str = "language-model", **training) -> PretrainRecipe:
    return PretrainRecipe(model=SMALL[objective], encoder=EncoderConfig(maxlen=60, max_features=1000),
                          training=replace(default_training(objective), validation_split=0.1, batch_size=32, **training),
                          data=DataSource(data=str(synthetic_csv / "train.csv"), test_data=str(synthetic_csv / "test.csv")),
                          objective=objective)


@pytest.fixture(scope="module")
def pretrained(synthetic_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrained") / "lm"
    pretrain(_recipe(synthetic_csv, epochs=3), out)
    return out


def test_pretraining_writes_a_run_with_its_perplexity_history(pretrained):
    assert {"config.json", "encoder.json", "model.safetensors", "history.json", "metrics.json"} <= {
        p.name for p in pretrained.iterdir()}
    assert not checkpoint_directory(pretrained).exists()
    history = json.loads((pretrained / "history.json").read_text())
    assert len(history["val_perplexity"]) == 3
    assert history["val_perplexity"][-1] < history["val_perplexity"][0]  # it learns the synthetic texts
    assert history["val_perplexity"][-1] < 1000 / 4  # far better than guessing among the vocabulary
    weights = safetensors.torch.load_file(pretrained / "model.safetensors")
    assert "body.recurrent.weight_hh_l0" in weights and any(k.startswith("softmax.") for k in weights)
    config = json.loads((pretrained / "config.json").read_text())
    assert config["model"]["name"] == "language-model" and config["model"]["config"]["cutoffs"] == [200]


@pytest.mark.parametrize("objective", sorted(SMALL))
def test_interrupted_pretraining_resumes_to_the_same_weights(objective, synthetic_csv, tmp_path, monkeypatch):
    recipe = replace(_recipe(synthetic_csv, objective, epochs=2), checkpoint_every=4)
    whole = pretrain(recipe, tmp_path / "whole")
    saving = Checkpointer.on_batch_end

    def interrupt(self, trainer):
        saving(self, trainer)
        if trainer.state.epoch == 1 and trainer.state.step == 8:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "on_batch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pretrain(recipe, tmp_path / "cut")
    monkeypatch.setattr(Checkpointer, "on_batch_end", saving)
    with pytest.raises(RunError, match="pretrain --resume"):
        pretrain(recipe, tmp_path / "cut")  # a fresh start over an unfinished one is refused
    with pytest.raises(RunError, match="pretrain --resume"):
        resume(tmp_path / "cut")  # `seqlab train --resume` names the right command
    resumed = resume_pretraining(tmp_path / "cut")
    assert resumed.objective == objective
    first = safetensors.torch.load_file(whole.run_directory / "model.safetensors")
    second = safetensors.torch.load_file(resumed.run_directory / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert whole.history["val_loss"] == resumed.history["val_loss"]


def _finetune(synthetic_csv: Path, pretrained: Path, out: Path, model: str = "lstm", **training) -> Recipe:
    recipe = Recipe(model=model, model_options={"pooling": "mean"}, encoder=EncoderConfig(maxlen=60),
                    training=TrainConfig(epochs=2, batch_size=32, validation_split=0.1, **training),
                    data=DataSource(data=str(synthetic_csv / "train.csv"), test_data=str(synthetic_csv / "test.csv")),
                    init_from=str(pretrained))
    return recipe


def test_init_from_copies_the_body_and_maps_word_vectors_by_word(pretrained, synthetic_csv, tmp_path):
    from seqlab.models import build_model
    from seqlab.pipeline import prepare
    from seqlab.text.encoder import TextEncoder
    from seqlab.training.finetune import body_options, init_from_pretrained

    prepared = prepare(DataSource(data=str(synthetic_csv / "train.csv"), test_data=str(synthetic_csv / "test.csv")),
                       EncoderConfig(maxlen=60, max_features=800))
    options = body_options(pretrained, {"pooling": "max"})
    assert options["hidden_size"] == 24 and options["embedding_dim"] == 16
    model = build_model("lstm", vocab_size=800, **options)
    message = init_from_pretrained(model, pretrained, prepared.corpus.encoder)
    assert "word vectors for" in message
    lm = safetensors.torch.load_file(pretrained / "model.safetensors")
    assert torch.equal(model.recurrent.weight_hh_l0, lm["body.recurrent.weight_hh_l0"])
    source = TextEncoder.load(pretrained).tokenizer.get_vocab()
    target = prepared.corpus.encoder.tokenizer.get_vocab()
    shared = [word for word, token_id in target.items() if token_id > 2 and word in source]
    assert len(shared) > 100
    for word in shared:
        assert torch.equal(model.embedding.weight[target[word]], lm["body.embedding.weight"][source[word]]), word


def test_finetuned_run_is_an_ordinary_run(pretrained, synthetic_csv, tmp_path, check_ordinary_run):
    recipe = replace(_finetune(synthetic_csv, pretrained, tmp_path),
                     training=TrainConfig(epochs=4, batch_size=32, validation_split=0.1, learning_rate=0.02))
    _, result = train_recipe(recipe, tmp_path / "tuned")
    run = result.run_directory
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == "lstm" and config["data"]["init_from"] == str(pretrained.resolve())
    data = DataSource(data=str(synthetic_csv / "train.csv"), test_data=str(synthetic_csv / "test.csv"))
    check_ordinary_run(run, data, ["a fine film", "dull and bad"], min_accuracy=0.6)


def test_gradual_unfreezing_keeps_lower_layers_fixed_in_the_first_epoch(pretrained, synthetic_csv, tmp_path):
    recipe = replace(_finetune(synthetic_csv, pretrained, tmp_path, gradual_unfreezing=True, schedule="slanted"),
                     training=TrainConfig(epochs=1, batch_size=32, validation_split=0.1, gradual_unfreezing=True,
                                          schedule="slanted"))
    from seqlab.models import build_model
    from seqlab.pipeline import prepare
    from seqlab.training.finetune import body_options, init_from_pretrained

    _, result = train_recipe(recipe, tmp_path / "one-epoch")
    assert json.loads((result.run_directory / "config.json").read_text())["training"]["gradual_unfreezing"] is True
    tuned = safetensors.torch.load_file(result.run_directory / "model.safetensors")
    prepared = prepare(recipe.data, recipe.encoder)
    start = build_model("lstm", vocab_size=800, **body_options(pretrained, {"pooling": "mean"}))
    torch.manual_seed(recipe.training.seed)
    init_from_pretrained(start, pretrained, prepared.corpus.encoder)
    assert torch.equal(tuned["recurrent.weight_hh_l0"], start.recurrent.weight_hh_l0)
    assert not torch.equal(tuned["head.weight"], start.head.weight)


def test_discriminative_rates_fall_by_layer():
    from seqlab.models import build_model
    from seqlab.training.groups import parameter_groups

    model = build_model("lstm", vocab_size=50, embedding_dim=4, hidden_size=4, layers=2)
    config = TrainConfig(learning_rate=0.01, discriminative=2.0)
    groups = parameter_groups(model, list(model.parameters()), config)
    assert [g["depth"] for g in groups] == [0, 1, 2, 3]  # head, top layer, first layer, embedding
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_slanted_schedule_rises_then_falls():
    from seqlab.training.finetune import slanted

    factors = [slanted(step, 100, 0.1) for step in range(100)]
    assert factors[0] == pytest.approx(1 / 32) and max(factors) == pytest.approx(1.0)
    assert int(np.argmax(factors)) == 10 and factors[-1] < 0.1


def test_init_from_refuses_what_it_cannot_honour(pretrained, synthetic_run, synthetic_csv, tmp_path):
    from seqlab.training.finetune import body_options

    with pytest.raises(RunError, match="not a language model"):
        body_options(synthetic_run, {})
    with pytest.raises(ConfigError, match="hidden-size 24"):
        body_options(pretrained, {"hidden_size": 64})
    with pytest.raises(ConfigError, match="one-directional"):
        train_recipe(_finetune(synthetic_csv, pretrained, tmp_path, model="bilstm"), tmp_path / "bi")
    with pytest.raises(ConfigError, match="gradual_unfreezing"):
        TrainConfig(gradual_unfreezing=True, schedule="cosine")


def test_pretrain_command(synthetic_csv, tmp_path):
    from typer.testing import CliRunner

    from seqlab.cli import app

    out = tmp_path / "lm"
    result = CliRunner().invoke(app, ["pretrain", "--data", str(synthetic_csv / "train.csv"), "--out", str(out),
                                      "--hidden-size", "16", "--embedding-dim", "8", "--maxlen", "40",
                                      "--max-features", "500", "--cutoffs", "100", "--validation-split", "0.1"])
    assert result.exit_code == 0, result.output
    assert "validation perplexity" in result.output and (out / "model.safetensors").is_file()
    bad = CliRunner().invoke(app, ["pretrain", "--data", str(synthetic_csv / "train.csv"), "--cutoffs", "x"])
    assert isinstance(bad.exception, ConfigError) and "--cutoffs takes whole numbers" in str(bad.exception)
