"""Models built by name: ``build_model("lstm", vocab_size=..., num_classes=...)``."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Callable

from seqlab.errors import ConfigError
from seqlab.models.base import SequenceClassifier
from seqlab.models.convolution import ConvolutionClassifier, ConvolutionConfig
from seqlab.models.ngrams import NgramBagClassifier, NgramBagConfig
from seqlab.models.recurrent import RecurrentClassifier, RecurrentConfig
from seqlab.models.transformer import TransformerClassifier, TransformerConfig

# name -> (config class, the defaults that make this name, model class)
_REGISTRY: dict[str, tuple[type, dict[str, Any], Callable[[Any], SequenceClassifier]]] = {
    "rnn": (RecurrentConfig, {"cell": "rnn"}, RecurrentClassifier),
    "lstm": (RecurrentConfig, {"cell": "lstm"}, RecurrentClassifier),
    "gru": (RecurrentConfig, {"cell": "gru"}, RecurrentClassifier),
    "birnn": (RecurrentConfig, {"cell": "rnn", "bidirectional": True}, RecurrentClassifier),
    "bilstm": (RecurrentConfig, {"cell": "lstm", "bidirectional": True}, RecurrentClassifier),
    "bigru": (RecurrentConfig, {"cell": "gru", "bidirectional": True}, RecurrentClassifier),
    # Additive attention pooling over the recurrent outputs; Output.attention holds the weights.
    "rnn-attention": (RecurrentConfig, {"cell": "rnn", "pooling": "attention"}, RecurrentClassifier),
    "lstm-attention": (RecurrentConfig, {"cell": "lstm", "pooling": "attention"}, RecurrentClassifier),
    "gru-attention": (RecurrentConfig, {"cell": "gru", "pooling": "attention"}, RecurrentClassifier),
    "bilstm-attention": (RecurrentConfig, {"cell": "lstm", "bidirectional": True, "pooling": "attention"},
                         RecurrentClassifier),
    "bigru-attention": (RecurrentConfig, {"cell": "gru", "bidirectional": True, "pooling": "attention"},
                        RecurrentClassifier),
    "transformer": (TransformerConfig, {}, TransformerClassifier),
    # Filters over windows of 3, 4 and 5 words, max-pooled (Kim, 2014): n-grams rather than order.
    "cnn": (ConvolutionConfig, {}, ConvolutionClassifier),
    # The mean of word and hashed word-pair vectors (fastText): no recurrence, order only in the pairs.
    "fasttext": (NgramBagConfig, {}, NgramBagClassifier),
}


def model_names() -> list[str]:
    return list(_REGISTRY)


def _entry(name: str):
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def model_config(name: str, **overrides: Any):
    """The config for a named model, with `overrides` applied (unknown keys are ignored
    only when they are None, so CLI options a model lacks can pass through unset)."""
    config_class, defaults, _ = _entry(name)
    known = {field.name for field in fields(config_class)}
    unknown = sorted(key for key, value in overrides.items() if key not in known and value is not None)
    if unknown:
        raise ConfigError(f"model {name!r} has no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}")
    return config_class(**{**defaults, **{k: v for k, v in overrides.items() if k in known and v is not None}})


def build_model(name: str, config=None, **overrides: Any) -> SequenceClassifier:
    """A fresh model for `name`; `config` (a dataclass) wins over `overrides`."""
    _, _, model_class = _entry(name)
    config = replace(config) if config is not None else model_config(name, **overrides)
    model = model_class(config)
    model.name = name
    return model
