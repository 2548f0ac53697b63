"""Training logs, written through the Callback API: CSV files for the run directory, TensorBoard scalars.

    steps.csv   epoch, step, loss, accuracy, learning_rate, seconds: one row per batch (that
                batch's loss and accuracy, the rate it was trained with, seconds into the epoch)
    epochs.csv  epoch, then the history's figures (loss, accuracy, val_loss, val_accuracy,
                seconds) and the learning rate of its last batch: one row per epoch

While a run trains, the CSV files grow beside its checkpoints (OUT.checkpoint/) a row at a time;
when it ends they are copied into the run directory. A checkpoint records how long each file
was, and a resumed run cuts them back to that length first, so rows written after the checkpoint
and before the interruption are not repeated. TensorBoard scalars (`TrainConfig.tensorboard`)
go to DIR/MODEL, numbered by batches trained; a resumed writer purges the events after the
checkpoint. Under torchrun, process 0 writes, with its own share's batch figures.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.training import distributed
from seqlab.training.fit import Callback, TrainConfig, Trainer

STEPS, EPOCHS = "steps.csv", "epochs.csv"
STEP_COLUMNS = ("epoch", "step", "loss", "accuracy", "learning_rate", "seconds")


def learning_rate(trainer: Trainer) -> float:
    return float(trainer.optimizer.param_groups[0]["lr"])


class BatchLog(Callback):
    """The figures of each batch, from the running sums the loop keeps over the epoch."""

    def __init__(self) -> None:
        self.sums = (0.0, 0, 0)  # the epoch's loss sum, correct and seen after the previous batch
        self.steps = 0  # batches trained in the whole run

    def batch_figures(self, trainer: Trainer) -> tuple[float, float]:
        """The loss and accuracy of the batch just trained."""
        state = trainer.state
        before = (0.0, 0, 0) if state.step == 1 else self.sums
        self.sums, self.steps = (state.loss_sum, state.correct, state.seen), self.steps + 1
        seen = max(state.seen - before[2], 1)
        return (state.loss_sum - before[0]) / seen, (state.correct - before[1]) / seen

    def state_dict(self) -> dict:
        return {"sums": list(self.sums), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.steps = tuple(state["sums"]), state["steps"]


class CsvLog(BatchLog):
    """steps.csv and epochs.csv in `directory` (None: write nothing, as on processes other than 0)."""

    def __init__(self, directory: Path | None):
        super().__init__()
        self.directory = directory if directory is not None and distributed.is_main() else None
        self.started = False
        self.rate: float | None = None  # the learning rate of the last batch logged

    def _start(self, lengths: dict[str, int]) -> None:
        """Cut each file back to `lengths` (a fresh run: empty)."""
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in (STEPS, EPOCHS):
            path = self.directory / name
            if path.exists():
                with open(path, "r+b") as handle:
                    handle.truncate(min(lengths.get(name, 0), path.stat().st_size))
        self.started = True

    def _append(self, name: str, header: tuple[str, ...], row: list) -> None:
        if self.directory is None:
            return
        if not self.started:
            self._start({})
        path = self.directory / name
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if handle.tell() == 0:
                writer.writerow(header)
            writer.writerow(row)

    def on_batch_end(self, trainer: Trainer) -> None:
        loss, accuracy = self.batch_figures(trainer)
        state, self.rate = trainer.state, learning_rate(trainer)
        self._append(STEPS, STEP_COLUMNS, [state.epoch + 1, state.step, f"{loss:.6g}", f"{accuracy:.6g}",
                                           f"{self.rate:.6g}", f"{state.epoch_seconds:.3f}"])

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        rate = self.rate if self.rate is not None else learning_rate(trainer)
        self._append(EPOCHS, ("epoch", *logs, "learning_rate"),
                     [trainer.state.epoch, *(f"{value:.6g}" for value in logs.values()), f"{rate:.6g}"])

    def lengths(self) -> dict[str, int]:
        """Each file's length in bytes, made durable (a checkpoint records them)."""
        found = {}
        for name in (STEPS, EPOCHS):
            path = self.directory / name if self.directory is not None else None
            if path is not None and path.exists():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
                found[name] = path.stat().st_size
        return found

    def state_dict(self) -> dict:
        return {**super().state_dict(), "lengths": self.lengths()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.directory is not None:
            self._start(state["lengths"])


class TensorBoardLog(BatchLog):
    """Scalars for TensorBoard in `directory`: per batch step/loss, step/accuracy, step/learning_rate;
    per epoch epoch/NAME for each figure of the history. Both are numbered by batches trained."""

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = directory
        self.writer = None

    def _writer(self):
        if self.writer is None and distributed.is_main():
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run drops what an interrupted writer logged after the checkpoint
            self.writer = SummaryWriter(str(self.directory), purge_step=self.steps + 1 if self.steps else None)
        return self.writer

    def on_batch_end(self, trainer: Trainer) -> None:
        loss, accuracy = self.batch_figures(trainer)
        writer = self._writer()
        if writer is not None:
            for name, value in (("loss", loss), ("accuracy", accuracy), ("learning_rate", learning_rate(trainer))):
                writer.add_scalar(f"step/{name}", value, self.steps)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        writer = self._writer()
        if writer is not None:
            for name, value in logs.items():
                writer.add_scalar(f"epoch/{name}", value, self.steps)
            writer.flush()

    def state_dict(self) -> dict:
        if self.writer is not None:
            self.writer.flush()
        return super().state_dict()


@dataclass
class RunLogs:
    """The log callbacks of one training run and the files they leave for its run directory."""

    callbacks: list[Callback] = field(default_factory=list)
    csv: CsvLog | None = None
    scratch: Path | None = None  # a folder made for the CSV files when no checkpoint folder holds them

    @property
    def files(self) -> dict[str, Path]:
        """File name in the run directory -> where it was written."""
        directory = self.csv.directory if self.csv is not None else None
        return {name: directory / name for name in (STEPS, EPOCHS)
                if directory is not None and (directory / name).is_file()}

    def finish(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def run_logs(name: str, config: TrainConfig, out: Path | None, checkpoints: Path | None) -> RunLogs:
    """CSV logs for a run saved at `out` (kept in its checkpoint folder `checkpoints` while it
    trains, else in a scratch folder beside it), and TensorBoard scalars if `config` asks for them."""
    logs = RunLogs()
    if out is not None:
        directory = checkpoints
        if directory is None and distributed.is_main():
            out.parent.mkdir(parents=True, exist_ok=True)
            directory = logs.scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.logs-"))
        logs.csv = CsvLog(directory)
        logs.callbacks.append(logs.csv)
    if config.tensorboard is not None:
        logs.callbacks.append(TensorBoardLog(Path(config.tensorboard) / name))
    return logs
