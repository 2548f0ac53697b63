"""Progress in the terminal: a bar during each epoch, Keras's line after it."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ConsoleReporter:
    def __init__(self, console: Console, title: str = ""):
        self.console = console
        self.title = title
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        self._progress = Progress(
            TextColumn(f"{self.title} epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=self.console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=batches, status="")

    def advance(self, loss: float, accuracy: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, status=f"loss {loss:.4f} accuracy {accuracy:.4f}")

    def end_epoch(self, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.stop()
        figures = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items() if key != "seconds")
        self.console.print(f"{self.title} Epoch {epoch}/{epochs} - {logs['seconds']:.1f}s - {figures}")
