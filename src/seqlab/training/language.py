"""The pretraining objectives of the one Trainer: next-word cross-entropy (language modelling) and
region embeddings' negative sampling, figures per word."""

from __future__ import annotations

import math

import numpy as np
import torch

from seqlab.evaluation.predicting import predict_logits
from seqlab.models.language import predictions
from seqlab.text.cache import EncodedSplit
from seqlab.training.batches import Batch
from seqlab.training.fit import Trainer


class LanguageModelling:
    """For a LanguageModel, whose logits are each text's summed next-word loss (batch, 1): the mean
    is over next words, not texts, and the figures are loss and perplexity (no accuracy)."""

    def weight(self, batch: Batch) -> int:
        return predictions(batch.lengths)

    def loss(self, logits: torch.Tensor, batch: Batch, total: int) -> tuple[torch.Tensor, int]:
        return logits.sum() / total, 0

    def logs(self, loss: float, accuracy: float, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}loss": loss, f"{prefix}perplexity": perplexity(loss)}

    def evaluate(self, trainer: Trainer, split: EncodedSplit) -> dict[str, float]:
        summed = predict_logits(trainer.model, split, trainer.config.eval_batch_size, trainer.shards)  # (texts, 1)
        words = int(np.maximum(split.lengths - 1, 0).sum())
        loss = float(summed.sum()) / max(words, 1)
        return {"loss": loss, "accuracy": 0.0, "perplexity": perplexity(loss)}


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


class RegionPrediction(LanguageModelling):
    """For a RegionEmbeddingModel, whose logits are each text's summed negative-sampling loss over the
    regions centred on its words: the mean is over words, and the figure is the loss alone."""

    def weight(self, batch: Batch) -> int:
        return int(batch.lengths.sum())

    def logs(self, loss: float, accuracy: float, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}loss": loss}

    def evaluate(self, trainer: Trainer, split: EncodedSplit) -> dict[str, float]:
        summed = predict_logits(trainer.model, split, trainer.config.eval_batch_size, trainer.shards)  # (texts, 1)
        return {"loss": float(summed.sum()) / max(int(split.lengths.sum()), 1), "accuracy": 0.0}
