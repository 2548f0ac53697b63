"""Fine-tuning a pretrained language model's body as a classifier (ULMFiT's tools).

- `init_from_pretrained`: the embedding and recurrent weights of a `seqlab pretrain` run copied
  into a recurrent classifier of the same shape; word vectors are matched by word, so the
  classifier's vocabulary may differ from the pretraining one.
- `FineTuning`: the slanted-triangular schedule and gradual unfreezing (a group not yet thawed
  has learning rate 0), both pure functions of where training stands, so a resume needs no state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqlab.errors import ConfigError, RunError
from seqlab.training.fit import Callback, Trainer, epoch_batches

# The recurrent settings a classifier takes over from the pretrained body (they fix the weights' shapes).
BODY_OPTIONS = ("cell", "embedding_dim", "hidden_size", "layers")


def slanted(step: int, steps: int, warmup: float, ratio: float = 32.0) -> float:
    """The slanted-triangular factor at batch `step` of `steps` (Howard & Ruder, 2018): a linear rise
    over the first `warmup` share, then a linear fall; from 1/ratio up to 1 and back."""
    cut = max(1, math.floor(steps * warmup))
    p = step / cut if step < cut else 1 - (step - cut) / max(cut * (1 / warmup - 1), 1)
    return (1 + p * (ratio - 1)) / ratio


class FineTuning(Callback):
    """Sets every group's rate before each batch: its base rate (discriminative), times the slanted
    factor, times 0 while gradual unfreezing keeps its depth frozen (epoch e thaws depths < e)."""

    def __init__(self, trainer: Trainer):
        config = trainer.config
        self.slanted = config.schedule == "slanted"
        self.unfreezing = config.gradual_unfreezing
        self.warmup = config.warmup
        self.per_epoch = len(epoch_batches(trainer.train.lengths, config, 1))
        self.steps = max(config.epochs * self.per_epoch, 1)
        self.base = [group["lr"] for group in trainer.optimizer.param_groups]
        self.set_rates(trainer, trainer.state.epoch, trainer.state.step)

    def set_rates(self, trainer: Trainer, epoch: int, step: int) -> None:
        """The rates for the batch after `step` batches of the epoch after `epoch` epochs."""
        factor = slanted(epoch * self.per_epoch + step, self.steps, self.warmup) if self.slanted else 1.0
        for group, base in zip(trainer.optimizer.param_groups, self.base):
            frozen = self.unfreezing and group.get("depth", 0) > epoch
            group["lr"] = 0.0 if frozen else base * factor

    def on_batch_end(self, trainer: Trainer) -> None:
        self.set_rates(trainer, trainer.state.epoch, trainer.state.step)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self.set_rates(trainer, trainer.state.epoch, 0)

    def load_state_dict(self, state: dict) -> None:
        pass  # the rates follow from the trainer's position, restored before fit runs


def pretrained_config(run: str | Path) -> dict[str, Any]:
    """The language-model config of the `seqlab pretrain` run at `run`; clear errors for anything else."""
    from seqlab.jsonfile import check, read_json
    from seqlab.models.language import NAME

    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"no pretrained run at {run} (no config.json); make one with `seqlab pretrain --out {run}`")
    config = read_json(path)
    check(config, path, {"model": dict})
    if config.get("model", {}).get("name") != NAME:
        raise RunError(f"{run} is a {config.get('model', {}).get('name')!r} run, not a language model from "
                       "`seqlab pretrain`; --init-from takes a pretrained run")
    return config


def body_options(run: str | Path, model_options: dict[str, Any]) -> dict[str, Any]:
    """`model_options` with the pretrained body's shape settings; a conflicting one is an error naming it."""
    body = pretrained_config(run)["model"]["config"]
    options = dict(model_options)
    for key in BODY_OPTIONS:
        given = options.get(key)
        if given is not None and given != body[key]:
            raise ConfigError(f"--init-from {run} has {key.replace('_', '-')} {body[key]}; drop "
                              f"--{key.replace('_', '-')} {given} or pretrain with it")
        options[key] = body[key]
    return options


def init_from_pretrained(model: nn.Module, run: str | Path, encoder) -> str:
    """Copy the pretrained body of `run` into `model` (a one-directional recurrent classifier built with
    body_options): recurrent weights as they are, word vectors row by row where the word is in both
    vocabularies. Returns a line saying what was copied."""
    import safetensors.torch

    from seqlab.files import file_sha256
    from seqlab.jsonfile import read_text
    from seqlab.runs import CHECKED, refuse_non_finite
    from seqlab.text.encoder import TextEncoder

    config = pretrained_config(run)
    directory = Path(run)
    for name, expected in config.get("checksums", {}).items():
        if name in CHECKED and file_sha256(directory / name) != expected:
            raise RunError(f"{directory / name} does not match the sha256 in its config.json; re-run `seqlab pretrain`")
    if getattr(model.config, "bidirectional", True) or not hasattr(model, "recurrent"):
        raise ConfigError(f"--init-from fine-tunes a one-directional recurrent model; {model.name} is not one "
                          "(use lstm, gru, lstm-attention or gru-attention, or --pooling with them)")
    weights = safetensors.torch.load_file(directory / "model.safetensors")
    refuse_non_finite(weights, directory / "model.safetensors")
    body = {key.removeprefix("body."): value for key, value in weights.items() if key.startswith("body.")}
    source = TextEncoder.from_json(read_text(directory / "encoder.json"), directory)
    state = model.state_dict()
    with torch.no_grad():
        for key, value in body.items():
            if key.startswith("recurrent."):
                state[key].copy_(value)
        pretrained_ids = source.tokenizer.get_vocab()
        target = state["embedding.weight"]  # (vocab, embedding)
        found = 0
        for word, token_id in encoder.tokenizer.get_vocab().items():
            row = pretrained_ids.get(word)
            if row is not None and token_id < target.shape[0]:
                target[token_id] = body["embedding.weight"][row]
                found += 1
    return (f"initialised from {run}: recurrent layers, and word vectors for {found:,} of "
            f"{encoder.vocab_size:,} vocabulary entries")

