"""The optimizer a TrainConfig names, built in one place for the Trainer (and benches)."""

from __future__ import annotations

from typing import Any

import torch

from seqlab.errors import ConfigError
from seqlab.training.config import TrainConfig


def adam(parameters: list[torch.nn.Parameter] | list[dict], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or AdamW with weight decay, as one fused kernel over all parameters where PyTorch has
    one (CPU since PyTorch 2.4, CUDA), else its per-tensor loop. The update is the same; the loop
    reads and writes each parameter and its two moments several times per step, the kernel once
    (bench/optimizer.py measures both)."""
    kind = torch.optim.AdamW if config.weight_decay else torch.optim.Adam
    options: dict[str, Any] = {"lr": config.learning_rate, "eps": config.adam_epsilon}
    if config.weight_decay:
        options["weight_decay"] = config.weight_decay
    try:
        return kind(parameters, fused=True, **options)
    except RuntimeError:  # no fused kernel for these parameters' device or dtype (or an older PyTorch)
        return kind(parameters, **options)


def build_optimizer(model: torch.nn.Module, parameters: list[torch.nn.Parameter] | list[dict],
                    config: TrainConfig) -> torch.optim.Optimizer:
    """`config.optimizer` over `parameters`: Adam (see `adam`), or plain SGD or Adagrad, which apply a
    sparse gradient (a model's `sparse_gradients`) to the touched rows only (SGD as fastText does)."""
    sparse = bool(getattr(getattr(model, "config", None), "sparse_gradients", False))
    if config.optimizer in ("sgd", "adagrad"):
        if config.weight_decay:
            raise ConfigError(f"weight_decay is AdamW's; with optimizer {config.optimizer} set weight_decay to 0")
        if sparse and config.clip_norm is not None:
            raise ConfigError("clip_norm cannot clip sparse gradients; drop clip_norm or set sparse_gradients false")
        kind = torch.optim.SGD if config.optimizer == "sgd" else torch.optim.Adagrad
        return kind(parameters, lr=config.learning_rate)
    if sparse:
        raise ConfigError("sparse_gradients needs optimizer 'sgd' or 'adagrad' (Adam's moments are dense); "
                          "pass --optimizer sgd or set sparse_gradients false")
    return adam(parameters, config)
