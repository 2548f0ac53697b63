"""The contract every model keeps, so one training loop and one predictor serve them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


class Output(NamedTuple):
    logits: torch.Tensor  # (batch, outputs): one logit for two classes, else one per class
    attention: torch.Tensor | None = None  # (batch, time) weights over tokens, for attention models


@dataclass(frozen=True)
class LayerRow:
    """One line of a Keras-style model summary."""

    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    parameters: int


class SequenceClassifier(nn.Module):
    """Base of all models: ``forward(ids, lengths) -> Output``.

    ``ids`` is (batch, time) with each text's tokens at positions 0 .. length - 1 and
    padding after them; ``lengths`` is (batch,). Outputs must not depend on padding.
    """

    name: str = "model"
    # Whether training on CPU splits each batch over threads by default (training/cpu.py): a win when
    # the work per text outweighs adding up each thread's gradients, a loss for large cheap tables.
    splits_batches: bool = True
    # PyTorch threads while training on CPU (training/cpu.py training_threads); None: PyTorch's own count.
    training_threads: int | None = None
    embedding: nn.Embedding  # every model's word vectors (set in its __init__)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        raise NotImplementedError

    def summary_rows(self, maxlen: int) -> list[LayerRow]:
        raise NotImplementedError

    def keras_parameter_note(self) -> str | None:
        """How the parameter count differs from the equivalent Keras model, if it does."""
        return None


def output_size(num_classes: int) -> int:
    """Two classes need one logit (sigmoid); more need one per class (softmax)."""
    return 1 if num_classes == 2 else num_classes


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())
