"""The optimizer's parameter groups: discriminative learning rates for fine-tuning (ULMFiT), each
layer below the top `discriminative` times slower than the one above it."""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from seqlab.errors import ConfigError
from seqlab.training.config import TrainConfig

_LAYER = re.compile(r"(?:_l(\d+)$)|(?:_layers\.(\d+)\.)")


def layer_depth(name: str, layers: int) -> int:
    """How far below the top parameter `name` of a recurrent classifier sits: 0 head and pooling,
    1 the top recurrent layer ... `layers` the first, `layers + 1` the embedding."""
    if name.startswith("embedding."):
        return layers + 1
    match = _LAYER.search(name)
    if match and ("recurrent." in name or "_layers." in name):
        return layers - int(match.group(1) or match.group(2))
    return 0


def parameter_groups(model: nn.Module, trainable: list[nn.Parameter], config: TrainConfig) -> list[Any]:
    """The optimizer's parameters: one group of all of them, or with discriminative rates or gradual
    unfreezing one group per depth (layer_depth), each with the rate its depth gives."""
    if config.discriminative == 1 and not config.gradual_unfreezing:
        return trainable
    layers = getattr(getattr(model, "config", None), "layers", None)
    if not hasattr(model, "first_layers") or layers is None:
        raise ConfigError(f"discriminative rates and gradual unfreezing need a recurrent model; "
                          f"{getattr(model, 'name', type(model).__name__)} has no layers to group")
    wanted = {id(parameter) for parameter in trainable}
    depths: dict[int, list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if id(parameter) in wanted:
            depths.setdefault(layer_depth(name, layers), []).append(parameter)
    return [{"params": params, "lr": config.learning_rate / config.discriminative ** depth, "depth": depth}
            for depth, params in sorted(depths.items())]
