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
        return Corpus(
            name=f"{self.name}[train={train},test={test},seed={seed}]",
            train=_take(self.train, balanced_sample(self.train.labels, train, seed, "train")),
            test=_take(self.test, balanced_sample(self.test.labels, test, seed, "test")),
            label_names=self.label_names,
            fingerprint=subset_fingerprint(self.fingerprint, train, test, seed),
            unlabelled=self.unlabelled,
        )


def subset_fingerprint(fingerprint: str, train: int | None, test: int | None, seed: int) -> str:
    """The fingerprint of `Corpus.subset(train, test, seed)` of the corpus `fingerprint` names."""
    if train is None and test is None:
        return fingerprint
    return f"{fingerprint}:balanced-sample(train={train},test={test},seed={seed})"


def balanced_sample(labels: np.ndarray, size: int | None, seed: int, split: str) -> np.ndarray | None:
    """Positions of a random, class-balanced sample of `size` texts of `split` (None: keep them all).

    The draw depends only on the labels, `size`, `seed` and which split it is."""
    if size is None or size >= len(labels):
        return None
    rng = _generator(seed, split)
    classes = np.unique(labels)
    per_class = np.array_split(np.arange(size), len(classes))
    chosen = [rng.choice(np.flatnonzero(labels == label), len(part), replace=False)
              for label, part in zip(classes, per_class)]
    return rng.permutation(np.concatenate(chosen))


def _generator(seed: int, split: str) -> np.random.Generator:
    """Each split draws from a random stream of its own, so that the test reviews a test size selects
    do not depend on the training size (evaluation redraws them without one). The training draw
    keeps the stream it always had: the same seed still gives the same training reviews."""
    if split not in ("train", "test"):
        raise ValueError(f"no split {split!r}: subsets are drawn of 'train' or 'test'")
    return np.random.default_rng(seed if split == "train" else [seed, 1])


def _take(split: Split, indices: np.ndarray | None) -> Split:
    return split if indices is None else split.take(indices)
