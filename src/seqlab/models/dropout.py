"""Dropout whose masks can come from a generator of the calling thread's own.

When the Trainer splits a batch over CPU threads (training/cpu.py), each shard draws its
masks from a generator seeded by (seed, epoch, step, shard), so a run repeats exactly even
though the threads run in any order. Anywhere else it is nn.Dropout, drawing from torch's
global generator.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

_thread = threading.local()


@contextmanager
def thread_generator(seed: int) -> Iterator[torch.Generator]:
    """Masks drawn on this thread come from a CPU generator seeded with `seed` meanwhile."""
    generator = torch.Generator().manual_seed(seed)
    previous = getattr(_thread, "generator", None)
    _thread.generator = generator
    try:
        yield generator
    finally:
        _thread.generator = previous


class ThreadDropout(nn.Dropout):
    """nn.Dropout; with ``whole_vectors`` it drops whole feature vectors (for word vectors: whole
    words, the same mask on every feature of a token) instead of single features."""

    def __init__(self, p: float = 0.5, whole_vectors: bool = False):
        super().__init__(p)
        self.whole_vectors = whole_vectors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        generator = getattr(_thread, "generator", None)
        if generator is not None and x.device.type != "cpu":
            generator = None
        if generator is None and not self.whole_vectors:
            return super().forward(x)
        shape = (*x.shape[:-1], 1) if self.whole_vectors else x.shape  # (..., 1 or features)
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.p, generator=generator)
        return x * keep / (1 - self.p)
