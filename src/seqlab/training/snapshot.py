"""A rank-agnostic training checkpoint: resume on any number of processes, from a file anyone can read.

    DIR/model.safetensors      weights of the bare model (no DistributedDataParallel prefix)
    DIR/optimizer.safetensors  optimizer tensors (Adam's moments), key "state.PARAM.NAME"
    DIR/callbacks.safetensors  tensors the callbacks keep (the best epoch's weights)
    DIR/state.json             TrainState (epoch, step, sums, history), optimizer settings, world size,
                               the callbacks' other state (the schedule's position, the best figure)

Nothing in it belongs to one process: the weights and optimizer state are the same on every
process (DDP keeps them so), the step counts global batches (each process runs one share of
each), and the running sums are totals over all processes (process 0 restores them, the others
start from zero, so the epoch's summed figures come out right). A checkpoint written by 2
processes resumes on 1 or 4. The directory is replaced whole, never half-written.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import safetensors.torch
import torch

from seqlab import __version__
from seqlab.errors import RunError
from seqlab.files import atomic_directory, write_json
from seqlab.training import distributed
from seqlab.training.checkpoint import flatten, unflatten
from seqlab.training.fit import Callback, History, Trainer, TrainState

SNAPSHOT_FORMAT = 1


def save_snapshot(trainer: Trainer, directory: Path) -> None:
    """Every process calls this (the sums are reduced over all); process 0 writes."""
    state = trainer.state
    loss_sum, correct, seen = trainer.reduce_sums(state.loss_sum, state.correct, state.seen)
    if not distributed.is_main():
        distributed.barrier()
        return
    with atomic_directory(Path(directory)) as staging:
        weights = {name: tensor.detach().cpu().contiguous() for name, tensor in trainer.model.state_dict().items()}
        safetensors.torch.save_file(weights, staging / "model.safetensors")
        optimizer = trainer.optimizer.state_dict()
        tensors, scalars = {}, {}
        for parameter, values in optimizer["state"].items():
            for name, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"state.{parameter}.{name}"] = value.detach().cpu().contiguous()
                else:
                    scalars[f"state.{parameter}.{name}"] = value
        safetensors.torch.save_file(tensors, staging / "optimizer.safetensors")
        callback_tensors: dict[str, torch.Tensor] = {}
        callbacks = flatten(trainer.callbacks_state(), "", callback_tensors)  # best weights, the schedule's place
        safetensors.torch.save_file(callback_tensors, staging / "callbacks.safetensors")
        group = distributed.current()
        write_json(staging / "state.json", {
            "format": SNAPSHOT_FORMAT,
            "seqlab_version": __version__,
            "world_size": group.world_size if group else 1,
            "train": {**asdict(state), "loss_sum": loss_sum, "correct": correct, "seen": seen},
            "optimizer": {"param_groups": optimizer["param_groups"], "scalars": scalars},
            "callbacks": callbacks,
        })
    distributed.barrier()


def has_snapshot(directory: Path) -> bool:
    return (Path(directory) / "state.json").is_file()


def restore_snapshot(trainer: Trainer, directory: Path) -> None:
    """Load weights, optimizer and TrainState into `trainer` (on every process)."""
    directory = Path(directory)
    try:
        document = json.loads((directory / "state.json").read_text())
        weights = safetensors.torch.load_file(directory / "model.safetensors")
        tensors = safetensors.torch.load_file(directory / "optimizer.safetensors")
        callbacks = (unflatten(document["callbacks"], safetensors.torch.load_file(directory / "callbacks.safetensors"))
                     if "callbacks" in document else {})
    except (OSError, ValueError, KeyError) as error:
        raise RunError(f"checkpoint {directory} is damaged ({error}); delete it to start over") from None
    if document.get("format") != SNAPSHOT_FORMAT:
        raise RunError(f"checkpoint {directory} has format {document.get('format')!r}; this seqlab reads "
                       f"{SNAPSHOT_FORMAT}. Delete it to start over.")
    try:
        trainer.model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise RunError(f"checkpoint {directory} was written for another model or settings: {error}") from None
    optimizer_state: dict = {"state": {}, "param_groups": document["optimizer"]["param_groups"]}
    for key, value in [*tensors.items(), *document["optimizer"]["scalars"].items()]:
        _, parameter, name = key.split(".", 2)
        optimizer_state["state"].setdefault(int(parameter), {})[name] = value
    trainer.optimizer.load_state_dict(optimizer_state)
    saved = document["train"]
    history = History(**saved.pop("history"))
    trainer.state = TrainState(**saved, history=history)
    trainer.load_callbacks_state(callbacks)
    if not distributed.is_main():  # the sums are totals: count them once
        trainer.state.loss_sum, trainer.state.correct, trainer.state.seen = 0.0, 0, 0


class Snapshots(Callback):
    """Write a checkpoint every `every_steps` batches and at the end of every epoch."""

    def __init__(self, directory: Path, every_steps: int | None = None):
        self.directory = Path(directory)
        self.every_steps = every_steps

    def on_batch_end(self, trainer: Trainer) -> None:
        if self.every_steps and trainer.state.step % self.every_steps == 0:
            save_snapshot(trainer, self.directory)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        save_snapshot(trainer, self.directory)
