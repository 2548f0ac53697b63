"""Fine-tuning from a `seqlab pretrain` run (ULMFiT's tools).

- `init_from_pretrained`: a language model's embedding and recurrent weights copied into a
  recurrent classifier of the same shape, or a region embedding copied into a seq-cnn as its fixed
  context; rows are matched by word (the classifier reads texts with the pretrained vocabulary,
  `pretrained_vocabulary`, so every word matches unless the encoder was built another way).
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
from seqlab.text.config import EncoderConfig
from seqlab.training.fit import Callback, Trainer, epoch_batches

# The settings a classifier takes over from each kind of pretrained run (they fix the weights' shapes):
# classifier setting -> the pretrained model's setting.
BODY_OPTIONS = {"language-model": {name: name for name in ("cell", "embedding_dim", "hidden_size", "layers")},
                "region-embedding": {"context_dim": "dimension", "context_width": "width"}}


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

    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"no pretrained run at {run} (no config.json); make one with `seqlab pretrain --out {run}`")
    config = read_json(path)
    check(config, path, {"model": dict})
    if config.get("model", {}).get("name") not in BODY_OPTIONS:
        raise RunError(f"{run} is a {config.get('model', {}).get('name')!r} run, not a language model or region "
                       "embedding from `seqlab pretrain`; --init-from takes a pretrained run")
    return config


def pretrained_vocabulary(run: str | Path, encoder: EncoderConfig):
    """The encoder of the pretrained run `run`, whose vocabulary the fine-tuned classifier reads texts
    with; a --max-features other than the default or the run's own is an error naming both."""
    from seqlab.jsonfile import read_text
    from seqlab.text.encoder import TextEncoder

    pretrained_config(run)
    directory = Path(run)
    try:
        vocabulary = TextEncoder.from_json(read_text(directory / "encoder.json"), directory)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunError(f"{directory / 'encoder.json'} cannot be read ({error}); re-run `seqlab pretrain`") from None
    if encoder.max_features not in (EncoderConfig().max_features, vocabulary.vocab_size):
        raise ConfigError(f"--init-from {run} brings its vocabulary of {vocabulary.vocab_size:,} words; drop "
                          f"--max-features {encoder.max_features} (set it when pretraining)")
    if encoder.lowercase != vocabulary.config.lowercase:
        raise ConfigError(f"--init-from {run} was pretrained with lowercase={vocabulary.config.lowercase}; "
                          "fine-tune with the same")
    return vocabulary


def body_options(run: str | Path, model_options: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """`model_options` with the pretrained run's shape settings; a conflicting one, or a `model` (name)
    that cannot take this kind of run, is an error naming it."""
    pretrained = pretrained_config(run)["model"]
    kind, body = pretrained["name"], pretrained["config"]
    if model is not None and (kind == "region-embedding") != (model == "seq-cnn"):
        wanted = "seq-cnn" if kind == "region-embedding" else "lstm, gru, lstm-attention or gru-attention"
        raise ConfigError(f"--init-from {run} is a {kind} run, which {wanted} fine-tunes, not {model}")
    options = dict(model_options)
    for key, source in BODY_OPTIONS[kind].items():
        given = options.get(key)
        if given is not None and given != body[source]:
            raise ConfigError(f"--init-from {run} has {key.replace('_', '-')} {body[source]}; drop "
                              f"--{key.replace('_', '-')} {given} or pretrain with it")
        options[key] = body[source]
    return options


def init_from_pretrained(model: nn.Module, run: str | Path, encoder) -> str:
    """Copy the pretrained run `run` into `model` (built with body_options): into a one-directional
    recurrent classifier, a language model's recurrent weights as they are and its word vectors; into
    a seq-cnn, a region embedding's table and bias as its fixed context. Table rows are copied where
    the word is in both vocabularies. Returns a line saying what was copied."""
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
    regions = config["model"]["name"] == "region-embedding"
    if regions and not getattr(model.config, "context_dim", 0):
        raise ConfigError(f"--init-from {run} is a region embedding, which a seq-cnn fine-tunes; {model.name} cannot")
    if not regions and (getattr(model.config, "bidirectional", True) or not hasattr(model, "recurrent")):
        raise ConfigError(f"--init-from fine-tunes a one-directional recurrent model; {model.name} is not one "
                          "(use lstm, gru, lstm-attention or gru-attention, or --pooling with them)")
    weights = safetensors.torch.load_file(directory / "model.safetensors")
    refuse_non_finite(weights, directory / "model.safetensors")
    source = TextEncoder.from_json(read_text(directory / "encoder.json"), directory)
    state = model.state_dict()
    with torch.no_grad():
        if regions:
            state["context_bias"].copy_(weights["bias"])
            found = copy_rows_by_word(state["context_embedding"], weights["embedding.weight"], source, encoder)
            return (f"initialised from {run}: the region embedding, for {found:,} of {encoder.vocab_size:,} "
                    "vocabulary entries")
        body = {key.removeprefix("body."): value for key, value in weights.items() if key.startswith("body.")}
        for key, value in body.items():
            if key.startswith("recurrent."):
                state[key].copy_(value)
        found = copy_rows_by_word(state["embedding.weight"], body["embedding.weight"], source, encoder)
    return (f"initialised from {run}: recurrent layers, and word vectors for {found:,} of "
            f"{encoder.vocab_size:,} vocabulary entries")


def copy_rows_by_word(target: torch.Tensor, rows: torch.Tensor, source, encoder) -> int:
    """Copy row `rows[i]` of the word with id i in the `source` encoder into `target` at that word's id
    in `encoder`, for every word in both vocabularies; returns how many."""
    pretrained_ids = source.tokenizer.get_vocab()
    found = 0
    for word, token_id in encoder.tokenizer.get_vocab().items():
        row = pretrained_ids.get(word)
        if row is not None and token_id < target.shape[0]:
            target[token_id] = rows[row]
            found += 1
    return found

