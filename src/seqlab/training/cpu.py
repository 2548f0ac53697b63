"""Training and predicting on a few CPU cores.

Two things make PyTorch's recurrent kernels fast on a small CPU:

- Denormal numbers flushed to zero. Gradients that vanish through 200 time steps pass
  through the subnormal range (below 1.2e-38), where every multiplication is far slower;
  a saturated model slows down many times over. TensorFlow flushes them by default. Values
  that small change no result in any digit that matters here.
- Data parallelism inside the process. The recurrent products of one batch are too small
  for two cores to share one product well; a batch split in two halves, each on its own
  thread running one core, is faster. Gradients of the halves, weighted by their share of the
  batch and added in a fixed order, equal the whole batch's gradient (to float rounding;
  tests/training/test_cpu.py). Dropout masks of each share come from its own generator
  (models/dropout.py), so runs repeat.

And two settings keep their memory down. oneDNN keeps every compiled kernel it made, one per
input shape, with its buffers (up to 1,024 of them); batches of every length make many, so
it keeps 8, at the same speed. And glibc gives a thread that allocates at the same time as
another a heap of its own ("arena"), up to 8 per core, each keeping freed blocks for reuse,
so threads that come and go (validation, prediction) leave heaps full of old activations: one
heap per training thread plus the main thread keeps less memory at the same speed. Fewer
heaps than that cut memory further but slow the GRU down (threads queue for the heap's lock).
The figures are in docs/performance.md ("Where the time went, and what changed").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

import torch
from torch import nn

from seqlab.models.dropout import ThreadDropout
from seqlab.training.batches import Batch

Result = TypeVar("Result")


def flush_denormals() -> None:
    """Treat subnormal floats as zero on this thread and on threads it starts later."""
    torch.set_flush_denormal(True)


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """flush_denormals() meanwhile, then this thread's previous setting: the setting is the
    processor's, and other code in the process (hypothesis, numerical libraries) expects
    subnormal floats to exist."""
    was_flushing = float(torch.tensor([1e-39]) * 2) == 0.0  # a subnormal float32 survives unless flushed
    flush_denormals()
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def has_shared_dropout(model: nn.Module) -> bool:
    """Whether training `model` draws masks from torch's global generator, which shards on
    several threads would draw from in a race (models/dropout.ThreadDropout does not)."""
    rates = [module.p for module in model.modules() if isinstance(module, nn.Dropout) and not isinstance(module, ThreadDropout)]
    rates += [module.dropout for module in model.modules() if isinstance(module, nn.RNNBase) and module.num_layers > 1]
    rates += [module.dropout for module in model.modules() if isinstance(module, nn.MultiheadAttention)]
    return any(rate > 0 for rate in rates)


def default_shards(model: nn.Module, device: torch.device) -> int:
    """One shard per core PyTorch would use, on CPU, unless the model draws shared dropout masks or
    prefers whole batches (SequenceClassifier.splits_batches); else 1."""
    if device.type != "cpu" or has_shared_dropout(model) or not getattr(model, "splits_batches", True):
        return 1
    return max(1, torch.get_num_threads())


M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
KERNEL_CACHE = "8"  # oneDNN primitives kept (its default: 1,024)


def prepare_process() -> None:
    """Settings the seqlab command makes before any work, and Trainer.fit before training on a CPU:
    oneDNN's kernel cache (read by oneDNN when it first makes a kernel, so in a program that ran
    oneDNN kernels before, it comes too late; a value the user set is kept) and the heaps (limit_heaps)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)
    limit_heaps()


def limit_heaps(threads: int | None = None) -> bool:
    """At most one glibc heap per training thread (default: one per core) and one for the main
    thread. Returns whether it took effect (glibc only; elsewhere the allocator stays as it is)."""
    return _set_heap_limit((threads or torch.get_num_threads()) + 1)


@functools.cache  # once per count: predicting calls this on every batch, and finding libc is not free
def _set_heap_limit(count: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, count))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


@contextmanager
def worker_threads(count: int) -> Iterator[ThreadPoolExecutor | None]:
    """`count` threads each running PyTorch operations on one core (torch's own pool is set to
    one thread meanwhile); None when count is 1, and nothing changes."""
    if count <= 1:
        yield None
        return
    previous = torch.get_num_threads()
    limit_heaps(max(count, previous))
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="seqlab-shard", initializer=flush_denormals)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)
        torch.set_num_threads(previous)


@contextmanager
def training_threads(model: nn.Module, device: torch.device) -> Iterator[None]:
    """PyTorch's thread count set to the model's `training_threads` meanwhile (on CPU, where it names one)."""
    count = getattr(model, "training_threads", None)
    if device.type != "cpu" or count is None or count == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def map_split(run: Callable[[Batch], Result], batches: Iterable[Batch], threads: int) -> Iterator[Result]:
    """`run` on every batch split in `threads` pieces, the pieces on worker threads of one core
    each (in one thread when `threads` is 1); results in the pieces' order."""
    with worker_threads(threads) as pool:
        pieces = (piece for batch in batches for piece in batch.split(threads))
        yield from (pool.map(run, pieces) if pool is not None else map(run, pieces))
