"""Callbacks for the training loop: early stopping with the best weights restored."""

from __future__ import annotations

import math

import torch

from seqlab.errors import ConfigError
from seqlab.training.fit import Callback, Trainer


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs; keep the best weights.

    With `restore_best` the model ends with the weights of its best epoch, as Keras's
    ``EarlyStopping(restore_best_weights=True)`` does.
    """

    def __init__(self, monitor: str = "val_loss", patience: int | None = None, restore_best: bool = True,
                 min_delta: float = 0.0):
        if monitor.removeprefix("val_") not in ("loss", "accuracy"):
            raise ConfigError(f"cannot monitor {monitor!r}; choose val_loss, val_accuracy, loss or accuracy")
        self.monitor = monitor
        self.patience = patience
        self.restore_best = restore_best
        self.min_delta = min_delta
        self.sign = 1.0 if monitor.endswith("loss") else -1.0  # lower is better for losses
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ConfigError(f"early stopping monitors {self.monitor!r}, which needs a validation split > 0")
        value = self.sign * logs[self.monitor]
        epoch = trainer.state.epoch
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        elif self.patience is not None and epoch - self.best_epoch >= self.patience:
            trainer.stop = True
        last_epoch = trainer.stop or epoch == trainer.config.epochs
        if last_epoch and self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
