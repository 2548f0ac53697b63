"""Resumable training: one checkpoint format, written atomically beside the run directory.

A run being trained at ``runs/lstm`` checkpoints into ``runs/lstm.checkpoint/``:

    tensors-00000012.safetensors  every tensor: model weights, optimizer moments, random states,
                                  what the callbacks keep (the best epoch's weights)
    state-00000012.json           everything else: epoch, step, running sums, history, optimizer
                                  settings, the callbacks' positions (schedule, early stopping),
                                  the recipe (model, encoder, training, data) and the sha256 of
                                  the tensors file
    latest.json                   {"generation": 12, ...}: the checkpoint to resume from

Each file is written to a temporary name, fsynced and renamed; ``latest.json`` is replaced
last, and older generations are deleted only after it. A process killed at any moment
leaves ``latest.json`` naming a complete, verified generation. The run directory itself is
written only when training ends (see runs.py), then the checkpoint folder is removed.

The format is rank-agnostic, so a run started on N processes resumes on any number: the
model's own ``state_dict`` (never DDP's ``module.`` names), the optimizer's, running sums
totalled over all processes, and one set of random states per process (the list's length is
the process count that wrote it). Every process takes part in making a checkpoint (the sums
and random states are gathered); process 0 alone writes it; every process reads it.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from seqlab import __version__
from seqlab.errors import RunError
from seqlab.files import atomic_path, file_sha256, write_json
from seqlab.jsonfile import check, count, read_json
from seqlab.runs import PICKLE_SUFFIXES
from seqlab.training import distributed
from seqlab.training.fit import Callback, Trainer

CHECKPOINT_FORMAT = 2  # 2: random states per process, the stop flag
SUFFIX = ".checkpoint"
LATEST = "latest.json"


def checkpoint_directory(run_directory: str | Path) -> Path:
    """Where the checkpoints of the run at `run_directory` live (accepts the checkpoint folder itself)."""
    path = Path(run_directory)
    return path if path.name.endswith(SUFFIX) else path.with_name(path.name + SUFFIX)


# Nested state (dicts, lists, tuples, numbers, strings, tensors) <-> flat tensors + a JSON tree.

def flatten(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous().clone()
        return {"$tensor": path}
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: flatten(item, f"{path}/{key}", tensors) for key, item in value.items()}
        return {"$items": [[key, flatten(item, f"{path}/{key}", tensors)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [flatten(item, f"{path}/{i}", tensors) for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [flatten(item, f"{path}/{i}", tensors) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}  # inf, -inf, nan: not JSON numbers
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {path}")


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if "$tensor" in tree:
            return tensors[tree["$tensor"]]
        if "$items" in tree:
            return {key: unflatten(item, tensors) for key, item in tree["$items"]}
        if "$tuple" in tree:
            return tuple(unflatten(item, tensors) for item in tree["$tuple"])
        if "$float" in tree:
            return float(tree["$float"])
        return {key: unflatten(item, tensors) for key, item in tree.items()}
    if isinstance(tree, list):
        return [unflatten(item, tensors) for item in tree]
    return tree


@dataclass
class Checkpoint:
    """A loaded checkpoint: the trainer's state and the recipe of the run it belongs to."""

    directory: Path
    generation: int
    recipe: dict[str, Any]  # model, encoder, training and data settings the run started with
    trainer_state: dict[str, Any]  # as Trainer.state_dict() returns it

    @property
    def epoch(self) -> int:
        return self.trainer_state["state"]["epoch"]

    @property
    def step(self) -> int:
        return self.trainer_state["state"]["step"]


def save_checkpoint(directory: Path, trainer_state: dict[str, Any], recipe: dict[str, Any], generation: int) -> Path:
    """Write generation `generation` of the checkpoint (`trainer_state` as Trainer.state_dict()
    returns it), then point latest.json at it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten(trainer_state, "", tensors)
    tensors_name, state_name = f"tensors-{generation:08d}.safetensors", f"state-{generation:08d}.json"
    with atomic_path(directory / tensors_name) as temporary:
        safetensors.torch.save_file(tensors, temporary, metadata={"seqlab_version": __version__})
    epoch, step = trainer_state["state"]["epoch"], trainer_state["state"]["step"]
    write_json(directory / state_name, {
        "format": CHECKPOINT_FORMAT, "seqlab_version": __version__, "generation": generation,
        "epoch": epoch, "step": step, "tensors": tensors_name,
        "tensors_sha256": file_sha256(directory / tensors_name), "recipe": recipe, "trainer": tree,
    })
    write_json(directory / LATEST, {"generation": generation, "state": state_name, "epoch": epoch, "step": step})
    for old in directory.iterdir():  # earlier generations and temporaries of interrupted writes
        if old.name not in (LATEST, tensors_name, state_name) and old.suffix != ".csv":  # .csv: logs.py's
            old.unlink(missing_ok=True)
    return directory / state_name


def _damaged(path: Path, what: str) -> RunError:
    return RunError(f"checkpoint {path} is damaged or was changed ({what}); it cannot be resumed. "
                    "Delete the folder and train from the start.")


def load_checkpoint(run_or_checkpoint: str | Path) -> Checkpoint:
    """The latest complete checkpoint of a run; clear errors for missing, pickled or damaged files."""
    given = Path(run_or_checkpoint)
    if given.is_file() and given.suffix in PICKLE_SUFFIXES:
        raise RunError(f"{given} looks like a pickled PyTorch file. seqlab never unpickles files (unpickling runs "
                       "arbitrary code); it resumes from the RUN.checkpoint/ folder that `seqlab train` writes.")
    directory = checkpoint_directory(given)
    latest = directory / LATEST
    if not latest.is_file():
        finished = (given / "config.json").is_file() and not given.name.endswith(SUFFIX)
        raise RunError(f"run {given} finished; there is nothing to resume" if finished else
                       f"no checkpoint to resume at {directory}; start the run with `seqlab train ... --out {given}`")
    pointer = _read_json(latest)
    check(pointer, latest, {"state": str}, fix=_FIX)
    state_path = directory / Path(str(pointer.get("state", ""))).name
    document = _read_json(state_path)
    if document.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"{state_path} has checkpoint format {document.get('format')!r}; this seqlab {__version__} "
                       f"resumes format {CHECKPOINT_FORMAT}")
    missing = [key for key in _STATE if key not in document]
    if missing:
        raise _damaged(directory, f"{state_path.name} lacks {', '.join(missing)}")
    check(document, state_path, _STATE, fix=_FIX)
    trainer = document["trainer"].get("state")
    if not isinstance(trainer, dict):
        raise _damaged(directory, f"{state_path.name} has no trainer state")
    check(trainer, state_path, {"epoch": count, "step": count, "seen": count, "correct": count, "history": dict},
          fix=_FIX)
    tensors_path = directory / Path(document["tensors"]).name
    if not tensors_path.is_file():
        raise _damaged(directory, f"{tensors_path.name} is missing")
    if file_sha256(tensors_path) != document["tensors_sha256"]:
        raise _damaged(directory, f"{tensors_path.name} does not match the sha256 recorded in {state_path.name}")
    try:
        tensors = safetensors.torch.load_file(tensors_path)
        trainer_state = unflatten(document["trainer"], tensors)
    except (SafetensorError, KeyError, OSError, TypeError, ValueError, AttributeError) as error:
        raise _damaged(directory, str(error)) from None
    return Checkpoint(directory, document["generation"], document["recipe"], trainer_state)


_FIX = "the checkpoint cannot be resumed: delete the folder and train from the start"
_STATE: dict[str, Any] = {"generation": count, "epoch": count, "step": count, "tensors": str, "tensors_sha256": str, "recipe": dict,
          "trainer": dict}  # what state-N.json must hold, and as what


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return read_json(path, fix=_FIX)
    except (FileNotFoundError, IsADirectoryError):
        raise _damaged(path.parent, f"{path.name} is missing") from None


class Checkpointer(Callback):
    """Checkpoints at the end of every epoch and, with `every_steps`, every that many batches.
    Runs on every process (making a checkpoint gathers from all); process 0 writes."""

    def __init__(self, directory: Path, recipe: dict[str, Any], every_steps: int = 0, generation: int = 0):
        if every_steps < 0:
            raise ValueError("every_steps must be 0 (epochs only) or more")
        self.directory, self.recipe, self.every_steps, self.generation = Path(directory), recipe, every_steps, generation

    def save(self, trainer: Trainer) -> None:
        trainer.check_finite()  # a diverged state is never checkpointed: the last good one stays
        self.generation += 1
        trainer_state = trainer.state_dict()
        if distributed.is_main():
            save_checkpoint(self.directory, trainer_state, self.recipe, self.generation)

    def on_batch_end(self, trainer: Trainer) -> None:
        if self.every_steps and trainer.state.step % self.every_steps == 0:
            self.save(trainer)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self.save(trainer)

    def restore(self, trainer: Trainer, checkpoint: Checkpoint) -> None:
        trainer.load_state_dict(checkpoint.trainer_state)
        self.generation = checkpoint.generation

    def finish(self) -> None:
        """The run directory is saved: the checkpoints are no longer needed (process 0 removes them)."""
        if distributed.is_main():
            shutil.rmtree(self.directory, ignore_errors=True)
