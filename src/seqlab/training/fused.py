"""The one place that decides whether a training step may skip autograd and the optimizer.

A model that can take a plain-SGD step itself (the fasttext bag: `sgd_step`, its gradients
worked out in a few tensor operations and added to the rows a batch read) saves the per-batch
work of autograd's graph and of SGD's sparse gradients, which for a cheap bag of vectors is
most of a step. The result is the same update (tests/training/test_fused.py holds the two
within 1e-5); anything the model's own step cannot honour takes the plain path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch

if TYPE_CHECKING:
    from seqlab.training.batches import Batch
    from seqlab.training.config import TrainConfig


class Stepping(Protocol):
    """What of a Trainer (training/fit.py) the choice reads; a Protocol, so this module need not import fit.py."""

    @property
    def model(self) -> torch.nn.Module: ...
    @property
    def network(self) -> torch.nn.Module: ...
    @property
    def optimizer(self) -> torch.optim.Optimizer: ...
    @property
    def objective(self) -> Any: ...
    @property
    def config(self) -> TrainConfig: ...
    @property
    def pool(self) -> object | None: ...


def fused_step(trainer: Stepping) -> Callable[[Batch], tuple[float, int]] | None:
    """The step `trainer` may take instead of backward() + optimizer.step(), or None for the plain path.

    It applies when the model offers `sgd_step` and says its bag route trains (`steps_itself`: no dropout),
    the optimizer is plain SGD (one group; no momentum, weight decay, Nesterov or maximising), the objective
    is the one the model's step minimises (`steps_fused`: classification's cross-entropy), and nothing else
    needs the gradients or the graph: no clipping, no bfloat16 autocast, no split over threads, no
    DistributedDataParallel wrapper (it sums gradients over processes)."""
    model, optimizer, config = trainer.model, trainer.optimizer, trainer.config
    if not (getattr(model, "steps_itself", False) and type(optimizer) is torch.optim.SGD
            and getattr(trainer.objective, "steps_fused", False) and trainer.network is model and trainer.pool is None
            and config.clip_norm is None and config.precision == "float32" and len(optimizer.param_groups) == 1):
        return None
    group = optimizer.param_groups[0]
    if group["momentum"] or group["weight_decay"] or group["nesterov"] or group["maximize"]:
        return None

    def step(batch: Batch) -> tuple[float, int]:
        logits = model.sgd_step(batch.ids, batch.lengths, batch.labels, group["lr"])  # type: ignore[operator]
        optimizer._opt_called = True  # type: ignore[attr-defined]  # as step() marks it: schedulers check a step came first
        with torch.no_grad():
            loss, correct = trainer.objective.loss(logits, batch, max(len(batch), 1))
        return float(loss), correct

    return step
