"""Figures drawn from saved histories; nothing here touches text or models."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from seqlab.files import atomic_path  # noqa: E402


def history_grid(histories: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Accuracy (top row) and loss (bottom row), training vs validation, one column per model.

    With the lecture's two models this is its 2x2 figure: RNN accuracy, LSTM accuracy,
    RNN loss, LSTM loss.
    """
    names = list(histories)
    figure, axes = plt.subplots(2, len(names), figsize=(6 * len(names), 8), squeeze=False)
    for column, name in enumerate(names):
        history = histories[name]
        epochs = range(1, len(history["loss"]) + 1)
        for row, metric in enumerate(("accuracy", "loss")):
            axis = axes[row][column]
            axis.plot(epochs, history[metric], "o-", label=f"training {metric}")
            if history.get(f"val_{metric}"):
                axis.plot(epochs, history[f"val_{metric}"], "s--", label=f"validation {metric}")
            axis.set_title(f"{name.upper()} {metric}")
            axis.set_xlabel("epoch")
            axis.set_ylabel(metric)
            axis.set_xticks(list(epochs))
            axis.grid(alpha=0.3)
            axis.legend()
    figure.tight_layout()
    save_figure(figure, Path(path))
    return Path(path)


def save_figure(figure, path: Path) -> None:
    """Save through a temporary file so a crash never leaves half an image."""
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(figure)


def accuracy_against_time(points: Mapping[str, tuple[float, float]], path: Path) -> Path:
    """One labelled point per model: training seconds (x, log scale) against test accuracy (y)."""
    figure, axis = plt.subplots(figsize=(7, 5))
    for name, (seconds, accuracy) in points.items():
        axis.scatter(max(seconds, 1e-3), accuracy)
        axis.annotate(name, (max(seconds, 1e-3), accuracy), textcoords="offset points", xytext=(5, 5), fontsize=9)
    axis.set_xscale("log")
    axis.set_xlabel("training time (s, log scale)")
    axis.set_ylabel("test accuracy")
    axis.set_title("Test accuracy against training time")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, Path(path))
    return Path(path)


def roc_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], areas: Mapping[str, float | None], path: Path) -> Path:
    """ROC curves of binary classifiers on the test texts, one line per model."""
    figure, axis = plt.subplots(figsize=(6, 6))
    for name, curve in curves.items():
        area = areas.get(name)
        axis.plot(curve["fpr"], curve["tpr"], label=f"{name} (AUC {area:.3f})" if area is not None else name)
    axis.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title("ROC curves (test reviews)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, Path(path))
    return Path(path)
