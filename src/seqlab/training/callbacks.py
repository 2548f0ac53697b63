"""Callbacks for the training loop: early stopping with the best weights restored."""

from __future__ import annotations

import math

import torch

from seqlab.errors import ConfigError
from seqlab.training.fit import Callback, Trainer, epoch_batches


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

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.best_state = state["best"], state["best_epoch"], state["best_state"]


class LearningRateSchedule(Callback):
    """`plateau`: halve the learning rate when validation loss stops falling (checked each epoch).
    `cosine`: anneal from the initial rate to 0 over all batches of all epochs. `linear`: fall in a
    straight line to 0 over all batches (fastText's)."""

    def __init__(self, kind: str, trainer: Trainer):
        self.kind = kind
        optimizer = trainer.optimizer
        if kind == "plateau":
            if trainer.validation is None:
                raise ConfigError("the plateau schedule watches val_loss, which needs a validation split > 0")
            self.scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau = \
                torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)
        elif kind in ("cosine", "linear"):
            steps = max(trainer.config.epochs * len(epoch_batches(trainer.train.lengths, trainer.config, 1)), 1)
            self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps) if kind == "cosine" else
                              torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(1 - step / steps, 0.0)))
        else:
            raise ConfigError(f"unknown schedule {kind!r}; choose plateau, cosine or linear (slanted: training/finetune.py)")

    def on_batch_end(self, trainer: Trainer) -> None:
        if not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step()

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(logs["val_loss"])

    def state_dict(self) -> dict:
        return {"scheduler": self.scheduler.state_dict()}  # where the schedule stands

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state["scheduler"])


class BestCheckpoint(Callback):
    """Keep a copy of the weights of the best epoch by `monitor` (saved as best.safetensors in the run)."""

    def __init__(self, monitor: str = "val_loss"):
        self.tracker = EarlyStopping(monitor, patience=None, restore_best=False)
        self.state: dict[str, torch.Tensor] | None = None

    @property
    def best_epoch(self) -> int:
        return self.tracker.best_epoch

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        before = self.tracker.best_epoch
        self.tracker.on_epoch_end(trainer, logs)
        if self.tracker.best_epoch != before:
            self.state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}

    def state_dict(self) -> dict:
        return {"tracker": self.tracker.state_dict(), "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.state = state["state"]


def training_callbacks(trainer: Trainer) -> list[Callback]:
    """The callbacks a TrainConfig asks for: schedule, early stopping / best weights, best checkpoint."""
    config = trainer.config
    callbacks: list[Callback] = []
    if config.schedule == "slanted" or config.gradual_unfreezing:
        from seqlab.training.finetune import FineTuning

        callbacks.append(FineTuning(trainer))
    elif config.schedule != "none":
        callbacks.append(LearningRateSchedule(config.schedule, trainer))
    if trainer.validation is not None:
        callbacks.append(BestCheckpoint(config.monitor))
    if config.patience is not None or config.restore_best:
        if trainer.validation is None:
            raise ConfigError("early stopping and restore_best watch the validation split; set validation_split > 0")
        callbacks.append(EarlyStopping(config.monitor, config.patience, config.restore_best))
    return callbacks
