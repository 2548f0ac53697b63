"""Models built by name: ``build_model("lstm", vocab_size=..., num_classes=...)``."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Callable

from seqlab.errors import ConfigError
from seqlab.models.base import SequenceClassifier
from seqlab.models.convolution import ConvolutionClassifier, ConvolutionConfig
from seqlab.models.names import model_entry
from seqlab.models.ngrams import NgramBagClassifier, NgramBagConfig
from seqlab.models.region import RegionConvolutionClassifier, RegionConvolutionConfig
from seqlab.models.recurrent import RecurrentClassifier, RecurrentConfig
from seqlab.models.transformer import TransformerClassifier, TransformerConfig

# family (models/names.py) -> (config class, model class)
_FAMILIES: dict[str, tuple[type, Callable[[Any], SequenceClassifier]]] = {
    "recurrent": (RecurrentConfig, RecurrentClassifier),
    "transformer": (TransformerConfig, TransformerClassifier),
    "convolution": (ConvolutionConfig, ConvolutionClassifier),
    "ngrams": (NgramBagConfig, NgramBagClassifier),
    "region": (RegionConvolutionConfig, RegionConvolutionClassifier),
}


def _entry(name: str):
    family, defaults = model_entry(name)
    config_class, model_class = _FAMILIES[family]
    return config_class, defaults, model_class


def model_config(name: str, **overrides: Any):
    """The config for a named model, with `overrides` applied (unknown keys are ignored
    only when they are None, so CLI options a model lacks can pass through unset)."""
    config_class, defaults, _ = _entry(name)
    known = {field.name for field in fields(config_class)}
    unknown = sorted(key for key, value in overrides.items() if key not in known and value is not None)
    if unknown:
        raise ConfigError(f"model {name!r} has no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}")
    return config_class(**{**defaults, **{k: v for k, v in overrides.items() if k in known and v is not None}})


def saved_model_config(name: str, saved: dict[str, Any]):
    """The config of a saved model: a field the saved dict lacks (written before the field existed) means what
    its config class's SAVED_BEFORE says, else takes today's default."""
    return model_config(name, **saved_model_options(name, saved))


def saved_model_options(name: str, saved: dict[str, Any]) -> dict[str, Any]:
    """Model options read back from a file (a config, a checkpoint's recipe), with SAVED_BEFORE's value for
    each such field they lack."""
    config_class, _, _ = _entry(name)
    return {**getattr(config_class, "SAVED_BEFORE", {}), **saved}


def recorded_model_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` as a file should keep them: each SAVED_BEFORE field given today's default when unset, so that
    reading them back (saved_model_options) never takes the file for one written before the field existed."""
    config_class, _, _ = _entry(name)
    defaults = model_config(name)
    unset = [key for key in getattr(config_class, "SAVED_BEFORE", {}) if options.get(key) is None]
    return {**options, **{key: getattr(defaults, key) for key in unset}}


def build_model(name: str, config=None, **overrides: Any) -> SequenceClassifier:
    """A fresh model for `name`; `config` (a dataclass) wins over `overrides`."""
    _, _, model_class = _entry(name)
    config = replace(config) if config is not None else model_config(name, **overrides)
    model = model_class(config)
    model.name = name
    return model
