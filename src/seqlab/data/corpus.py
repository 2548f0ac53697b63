"""Labelled texts as they come from a source, before any tokenization."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Split:
    """Texts with integer labels (0 .. number of classes - 1)."""

    texts: list[str]
    labels: np.ndarray  # (n,) int64

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices: np.ndarray) -> Split:
        return Split([self.texts[i] for i in indices], self.labels[indices])


@dataclass(frozen=True)
class Corpus:
    """A train and a test split sharing label names; `fingerprint` identifies the content."""

    name: str
    train: Split
    test: Split
    label_names: tuple[str, ...]
    fingerprint: str
    unlabelled: list[str] = field(default_factory=list)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> Corpus:
        """A random, class-balanced sample of each split (for quick runs and tests)."""
        rng = np.random.default_rng(seed)
        return Corpus(
            name=f"{self.name}[train={train},test={test},seed={seed}]",
            train=_sample(self.train, train, rng),
            test=_sample(self.test, test, rng),
            label_names=self.label_names,
            fingerprint=f"{self.fingerprint}:subset:{train}:{test}:{seed}",
            unlabelled=self.unlabelled,
        )


def _sample(split: Split, size: int | None, rng: np.random.Generator) -> Split:
    if size is None or size >= len(split):
        return split
    classes = np.unique(split.labels)
    per_class = np.array_split(np.arange(size), len(classes))
    chosen = [
        rng.choice(np.flatnonzero(split.labels == label), len(part), replace=False)
        for label, part in zip(classes, per_class)
    ]
    return split.take(rng.permutation(np.concatenate(chosen)))
