"""One training loop for every model: Keras's fit semantics, faster batches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from seqlab.errors import ConfigError
from seqlab.evaluation.metrics import loss_from_logits, metrics_from_logits, predicted_labels
from seqlab.models.base import SequenceClassifier
from seqlab.text.cache import EncodedSplit
from seqlab.training.batches import batch_indices, collate, iterate


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training texts
    batch_size: int = 128  # texts per gradient step
    learning_rate: float = 1e-3  # Adam's step size (Keras default)
    adam_epsilon: float = 1e-7  # Adam's epsilon (Keras default; PyTorch's is 1e-8)
    validation_split: float = 0.2  # share of the shuffled training texts held out, taken from the end as Keras does
    seed: int = 42  # seeds the split, initial weights, batch order and dropout
    bucket: bool = True  # batch texts of similar length together (less padding, same results)
    eval_batch_size: int = 512  # texts per batch when only predicting

    def __post_init__(self) -> None:
        if not 0 <= self.validation_split < 1:
            raise ConfigError(f"validation_split must be in [0, 1); got {self.validation_split}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")


@dataclass
class History:
    """Per-epoch figures, named as Keras names them."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def append(self, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            getattr(self, key).append(value)


class Reporter(Protocol):
    """What the loop tells the outside world; the CLI draws progress bars from it."""

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None: ...
    def advance(self, loss: float, accuracy: float) -> None: ...
    def end_epoch(self, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...


class Silent:
    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def advance(self, loss: float, accuracy: float) -> None:
        pass

    def end_epoch(self, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        pass


def split_validation(split: EncodedSplit, fraction: float, seed: int) -> tuple[EncodedSplit, EncodedSplit | None]:
    """Shuffle with `seed`, then hold out the last `fraction`, as Keras's validation_split does
    on the already shuffled keras.datasets.imdb arrays."""
    order = np.random.default_rng(seed).permutation(len(split))
    held = int(round(len(order) * fraction))
    if held == 0:
        return split.take(order), None
    return split.take(order[:-held]), split.take(order[-held:])


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit(
    model: SequenceClassifier,
    train: EncodedSplit,
    validation: EncodedSplit | None,
    config: TrainConfig,
    reporter: Reporter | None = None,
) -> History:
    """Adam + cross-entropy for `config.epochs` epochs; returns the per-epoch history."""
    reporter = reporter or Silent()
    device = next(model.parameters()).device
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_epsilon)
    history = History()
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        batches = batch_indices(train.lengths, config.batch_size, rng, config.bucket)
        reporter.start_epoch(epoch, config.epochs, len(batches))
        total_loss = torch.zeros((), dtype=torch.float64)
        total_correct = torch.zeros((), dtype=torch.int64)
        seen = 0
        for indices in batches:
            batch = collate(train, indices).to(device)
            logits = model(batch.ids, batch.lengths).logits  # (batch, outputs)
            loss = loss_from_logits(logits, batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                size = len(indices)
                total_loss += loss.detach().double().cpu() * size
                total_correct += (predicted_labels(logits) == batch.labels).sum().cpu()
                seen += size
                reporter.advance(float(total_loss) / seen, float(total_correct) / seen)
        logs = {"loss": float(total_loss) / seen, "accuracy": float(total_correct) / seen}
        if validation is not None and len(validation):
            scores = metrics_from_logits(predict_logits(model, validation, config.eval_batch_size), torch.from_numpy(validation.labels))
            logs |= {"val_loss": scores["loss"], "val_accuracy": scores["accuracy"]}
        logs["seconds"] = time.perf_counter() - started
        history.append(logs)
        reporter.end_epoch(epoch, config.epochs, logs)
    model.eval()
    return history


@torch.no_grad()
def predict_logits(model: SequenceClassifier, split: EncodedSplit, batch_size: int = 512) -> torch.Tensor:
    """(texts, outputs) logits in the split's order, computed in length-sorted batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: torch.Tensor | None = None
    for batch in iterate(split, batch_size, rng=None, bucket=True):
        logits = model(batch.to(device).ids, batch.to(device).lengths).logits.float().cpu()
        if out is None:
            out = torch.empty((len(split), logits.shape[-1]), dtype=torch.float32)
        out[torch.from_numpy(batch.indices)] = logits
    model.train(was_training)
    return out if out is not None else torch.empty((0, 1))


def evaluate(model: SequenceClassifier, split: EncodedSplit, batch_size: int = 512) -> dict[str, float]:
    """Accuracy and loss on `split` (e.g. the test reviews)."""
    return metrics_from_logits(predict_logits(model, split, batch_size), torch.from_numpy(split.labels))
