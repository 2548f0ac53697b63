"""Batches from encoded splits: grouped by length, padded after the tokens, no Python per text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from seqlab.text.cache import EncodedSplit
from seqlab.text.encoder import PAD

# Batches are formed inside windows of this many batches, sorted by length: texts of similar
# length share a batch (little padding) while the order of batches stays random.
BUCKET_WINDOW = 50
# Batches are padded to a multiple of this many steps. Fused recurrent kernels (oneDNN) build
# and keep one compiled primitive per input shape, each with its memory, so every length from 1
# to 200 would make 200 of them (docs/performance.md); rounding costs a few padded steps, which
# never change a result (tokens come first and each text is read up to its own length).
STEP_MULTIPLE = 8


def padded_length(longest: int, limit: int | None = None) -> int:
    """`longest` rounded up to a multiple of STEP_MULTIPLE (at most `limit`)."""
    rounded = -(-longest // STEP_MULTIPLE) * STEP_MULTIPLE
    return min(rounded, limit) if limit is not None else rounded


@dataclass(frozen=True)
class Batch:
    ids: torch.Tensor  # (batch, time) int64, tokens first, padding after
    lengths: torch.Tensor  # (batch,) int64, at least 1
    labels: torch.Tensor  # (batch,) int64
    indices: np.ndarray  # (batch,) positions in the split, to put results back in order

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, parts: int) -> list[Batch]:
        """Up to `parts` batches of consecutive rows, each cut to its own longest text."""
        pieces = []
        for rows in np.array_split(np.arange(len(self)), min(parts, len(self))):
            start, stop = int(rows[0]), int(rows[-1]) + 1
            lengths = self.lengths[start:stop]
            time = padded_length(int(lengths.max()), self.ids.shape[1])
            pieces.append(Batch(self.ids[start:stop, :time], lengths, self.labels[start:stop], self.indices[start:stop]))
        return pieces

    def to(self, device: torch.device) -> Batch:
        if device.type == "cpu":
            return self
        return Batch(self.ids.to(device, non_blocking=True), self.lengths.to(device, non_blocking=True),
                     self.labels.to(device, non_blocking=True), self.indices)


def collate(split: EncodedSplit, indices: np.ndarray) -> Batch:
    """Gather the texts at `indices` into one padded (batch, longest) array."""
    encoded = split.encoded
    lengths = np.maximum(encoded.lengths[indices], 1)  # an empty text is read as one padding token
    time = padded_length(int(lengths.max()))
    steps = np.arange(time)
    inside = steps[None, :] < encoded.lengths[indices][:, None]  # (batch, time)
    positions = np.minimum(encoded.offsets[indices][:, None] + steps[None, :], max(len(encoded.ids) - 1, 0))
    ids = np.where(inside, encoded.ids[positions] if len(encoded.ids) else PAD, PAD)  # (batch, time)
    return Batch(
        ids=torch.from_numpy(ids.astype(np.int64)),
        lengths=torch.from_numpy(lengths.astype(np.int64)),
        labels=torch.from_numpy(split.labels[indices].astype(np.int64)),
        indices=indices,
    )


def batch_indices(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None, bucket: bool = True
) -> list[np.ndarray]:
    """Index arrays, one per batch.

    With `rng`: shuffled (training); batches of similar length when `bucket`.
    Without: sorted by length when `bucket` (evaluation, fastest), else in order.
    """
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    if bucket:
        window = batch_size * BUCKET_WINDOW if rng is not None else len(order)
        order = np.concatenate([
            chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in np.array_split(order, max(1, -(-len(order) // window)))
        ]) if len(order) else order
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if rng is not None and bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def iterate(
    split: EncodedSplit, batch_size: int, rng: np.random.Generator | None = None, bucket: bool = True
) -> Iterator[Batch]:
    for indices in batch_indices(split.lengths, batch_size, rng, bucket):
        yield collate(split, indices)
