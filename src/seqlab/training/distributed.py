"""Training on many processes with PyTorch's own engine: torchrun + DistributedDataParallel.

    torchrun --nproc-per-node 2 -m seqlab train lstm ...     # or: seqlab train lstm --nproc 2

How the work is shared. `TrainConfig.batch_size` stays the number of texts per gradient step
(the global batch), so N processes do the same optimisation as one, only faster:

- every process computes the same global batch order, a pure function of (seed, epoch) with
  texts of similar length batched together (fit.epoch_batches);
- each global batch is dealt out to the processes (text j of the length-sorted batch goes to
  process j mod N), so each process's share is bucketed by length too and all shares are
  about equally long. This is torch's DistributedSampler contract (the same seed and epoch give
  every process a disjoint share, together covering the data) applied to length-bucketed
  batches, which DistributedSampler's strided slices of one permutation would break up;
- DistributedDataParallel averages the gradients of the shares; with equal shares that is the
  gradient of the global batch (a last batch that does not split evenly is weighted slightly
  differently). A global batch with fewer texts than processes (the very last one) is dropped,
  since every process must run the same number of steps;
- training sums are summed over all processes, and validation logits gathered from them: the
  figures cover the whole validation set, not process 0's share.

Only process 0 (`is_main()`) writes logs, checkpoints and the run directory. A process that
dies ends the others: torchrun tears the group down and exits non-zero. `seqlab train --resume
OUT` continues from the last checkpoint on any number of processes (training/checkpoint.py),
and a restart by torchrun's --max-restarts continues by itself (recipes.py).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from seqlab.errors import ConfigError
from seqlab.evaluation.metrics import epoch_metrics
from seqlab.evaluation.predicting import predict_logits
from seqlab.models.base import SequenceClassifier
from seqlab.text.cache import EncodedSplit
from seqlab.training.fit import (Callback, Reporter, TrainConfig, Trainer, epoch_batches, random_states,
                                 set_random_states)

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Group:
    """This process's place in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_group: Group | None = None


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in LAUNCH_VARIABLES)


def initialize(backend: str | None = None, timeout_s: float = 600) -> Group | None:
    """Join the process group torchrun set up (idempotent); None when not launched by torchrun.

    gloo on CPU, nccl when CUDA is available (one GPU per process: LOCAL_RANK picks it).
    """
    global _group
    if _group is not None or not launched_by_torchrun():
        return _group
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    _group = Group(dist.get_rank(), dist.get_world_size(), local_rank, device)
    return _group


def current() -> Group | None:
    """The group of a torchrun launch with more than one process, else None."""
    group = initialize()
    return group if group is not None and group.world_size > 1 else None


def is_main() -> bool:
    group = initialize()
    return group is None or group.is_main


def barrier() -> None:
    if current() is not None:
        dist.barrier()


def shutdown() -> None:
    global _group
    if dist.is_initialized():
        dist.destroy_process_group()
    _group = None


def shard_batches(batches: list[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """This process's share of each global batch; every process gets the same number of batches."""
    return [indices[rank::world_size] for indices in batches if len(indices) >= world_size]


def all_reduce_sums(values: list[float], device: torch.device) -> list[float]:
    """Sum `values` over all processes (float64, so counts stay exact)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_gather(tensor: torch.Tensor, group: Group) -> list[torch.Tensor]:
    """`tensor` of every process (the same shape and dtype on each), in process order, on the CPU."""
    local = tensor.to(group.device)
    pieces = [torch.empty_like(local) for _ in range(group.world_size)]
    dist.all_gather(pieces, local)
    return [piece.cpu() for piece in pieces]


def distributed_logits(model: SequenceClassifier, split: EncodedSplit, group: Group,
                       batch_size: int = 512) -> torch.Tensor:
    """(texts, outputs) logits of the whole of `split` on every process: each predicts one share
    (text i on process i mod N), then all of them gather the others' shares."""
    share = predict_logits(model, split.select(np.arange(group.rank, len(split), group.world_size)), batch_size,
                           threads=1)
    shares = [share] * group.world_size  # placeholders: all_gather_object replaces every entry
    dist.all_gather_object(shares, share)
    logits = torch.empty((len(split), shares[0].shape[-1]), dtype=torch.float32)
    for rank, part in enumerate(shares):
        logits[rank :: group.world_size] = part
    return logits


class DistributedTrainer(Trainer):
    """The Trainer, one process of many: DDP for gradients, a share of every batch, summed training
    figures and validation logits gathered from every process."""

    def __init__(
        self,
        model: SequenceClassifier,
        train: EncodedSplit,
        validation: EncodedSplit | None,
        config: TrainConfig,
        group: Group,
        reporter: Reporter | None = None,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
    ):
        if config.batch_size < group.world_size:
            raise ConfigError(f"batch_size {config.batch_size} is smaller than the {group.world_size} processes; "
                              "each process needs at least one text per step: raise --batch-size")
        super().__init__(model, train, validation, config, reporter if group.is_main else None, callbacks)
        self.group = group
        self.shards = 1  # each process already has its own cores
        device_ids = [group.device.index] if group.device.type == "cuda" else None
        self.network = DistributedDataParallel(model, device_ids=device_ids)
        # Same initial weights everywhere (DDP also broadcasts process 0's), different dropout masks.
        torch.manual_seed(config.seed * 1_000_003 + group.rank)

    def state_dict(self) -> dict:
        """Called on every process: the running sums are totalled and each process's random states
        gathered, so process 0's copy is the whole checkpoint."""
        saved = super().state_dict()
        state = self.state
        totals = self.reduce_sums(state.loss_sum, state.correct, state.seen)
        saved["state"] |= dict(zip(("loss_sum", "correct", "seen"), totals))
        gathered = {key: all_gather(value, self.group) for key, value in sorted(random_states().items())}
        saved["random"] = [{key: pieces[rank] for key, pieces in gathered.items()} for rank in range(self.group.world_size)]
        return saved

    def load_state_dict(self, saved: dict) -> None:
        super().load_state_dict(saved)
        if not self.group.is_main:  # the sums are totals: count them once
            self.state.loss_sum, self.state.correct, self.state.seen = 0.0, 0, 0

    def load_random_states(self, per_process: list[dict[str, torch.Tensor]]) -> None:
        """Each process takes back its own generators; on another process count the shares of each
        batch differ anyway, and each process keeps the generator seeded for its rank."""
        if len(per_process) == self.group.world_size:
            set_random_states(per_process[self.group.rank])

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return shard_batches(epoch_batches(self.train.lengths, self.config, epoch), self.group.rank, self.group.world_size)

    def reduce_sums(self, loss_sum: float, correct: int, seen: int) -> tuple[float, int, int]:
        total_loss, total_correct, total_seen = all_reduce_sums([loss_sum, float(correct), float(seen)], self.group.device)
        return total_loss, int(total_correct), int(total_seen)

    def evaluate(self, split: EncodedSplit) -> dict[str, float]:
        logits = distributed_logits(self.model, split, self.group, self.config.eval_batch_size)
        return epoch_metrics(logits, torch.from_numpy(split.labels))


def make_trainer(
    model: SequenceClassifier,
    train: EncodedSplit,
    validation: EncodedSplit | None,
    config: TrainConfig,
    reporter: Reporter | None = None,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
) -> Trainer:
    """A DistributedTrainer under a torchrun launch of several processes, else the plain Trainer."""
    group = current()
    if group is None:
        return Trainer(model, train, validation, config, reporter, callbacks)
    model.to(group.device)
    return DistributedTrainer(model, train, validation, config, group, reporter, callbacks)
