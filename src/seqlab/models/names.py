"""The model names and what makes each one, without the model code: the CLI lists and checks
names without importing torch; registry.py builds the models from this table."""

from __future__ import annotations

from typing import Any

from seqlab.errors import ConfigError

# name -> (family, the settings that make this name); registry.py holds each family's config and model classes
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn": ("recurrent", {"cell": "rnn"}),
    "lstm": ("recurrent", {"cell": "lstm"}),
    "gru": ("recurrent", {"cell": "gru"}),
    "birnn": ("recurrent", {"cell": "rnn", "bidirectional": True}),
    "bilstm": ("recurrent", {"cell": "lstm", "bidirectional": True}),
    "bigru": ("recurrent", {"cell": "gru", "bidirectional": True}),
    # Additive attention pooling over the recurrent outputs; Output.attention holds the weights.
    "rnn-attention": ("recurrent", {"cell": "rnn", "pooling": "attention"}),
    "lstm-attention": ("recurrent", {"cell": "lstm", "pooling": "attention"}),
    "gru-attention": ("recurrent", {"cell": "gru", "pooling": "attention"}),
    "bilstm-attention": ("recurrent", {"cell": "lstm", "bidirectional": True, "pooling": "attention"}),
    "bigru-attention": ("recurrent", {"cell": "gru", "bidirectional": True, "pooling": "attention"}),
    "transformer": ("transformer", {}),
    # Filters over windows of 3, 4 and 5 words, max-pooled (Kim, 2014): n-grams rather than order.
    "cnn": ("convolution", {}),
    # Filters over one-hot regions of 3 words, max-pooled (Johnson & Zhang, 2015): word order within each region.
    "seq-cnn": ("region", {}),
    # The mean of word and hashed word-pair vectors (fastText): no recurrence, order only in the pairs.
    "fasttext": ("ngrams", {}),
}


def model_names() -> list[str]:
    return list(MODELS)


def model_entry(name: str) -> tuple[str, dict[str, Any]]:
    """The family and settings of `name`; an unknown name is an error listing the valid ones."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]
