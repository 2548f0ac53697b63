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
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = getattr(_thread, "generator", None)
        if generator is None or not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=generator)  # (same shape as x)
        return x * keep / (1 - self.p)
