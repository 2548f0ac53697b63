"""Recurrent classifiers: Embedding -> RNN/LSTM/GRU (stacked, optionally bidirectional) -> pooling -> Dense.

Padding never reaches a prediction: tokens sit at the start of each row, so the recurrence
reads every real token before any padding, the last state is taken at each text's own last
token, and the backward direction of a bidirectional layer reads each text reversed within
its own length: no packing. How the layers run (seqlab's CPU loops or PyTorch's kernels) is
decided in one place, models/kernels.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models import kernels
from seqlab.models.attention import AdditiveAttention, pool
from seqlab.models.dropout import ThreadDropout
from seqlab.models.base import LayerRow, Output, SequenceClassifier, count_parameters, output_size

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
KERAS_NAMES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
POOLINGS = ("last", "mean", "max", "attention")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass
class RecurrentConfig:
    cell: str = "lstm"  # rnn (Elman, tanh) | lstm | gru
    vocab_size: int = 10_000  # rows of the embedding table (the lecture's max_features)
    embedding_dim: int = 128  # size of each word vector
    hidden_size: int = 64  # units per direction of each recurrent layer
    layers: int = 1  # recurrent layers stacked
    bidirectional: bool = False  # add a right-to-left pass and concatenate both
    pooling: str = "last"  # how time steps become one vector: last state (the lecture's), mean, max or attention
    attention_size: int = 64  # width of the additive attention's scoring layer (attention pooling only)
    num_classes: int = 2  # 2: one sigmoid output; more: softmax over classes
    embedding_dropout: float = 0.0  # dropout on word vectors; 0 keeps the lecture's model
    word_dropout: float = 0.0  # share of words whose whole vector is dropped (spatial dropout over time)
    recurrent_dropout: float = 0.0  # dropout between stacked layers
    output_dropout: float = 0.0  # dropout before the output layer
    freeze_embeddings: bool = False  # keep the word vectors fixed (e.g. pretrained ones)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.layers < 1:
            raise ConfigError(f"layers must be at least 1; got {self.layers}")


class RecurrentClassifier(SequenceClassifier):
    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        self.name = f"{'bi' if config.bidirectional else ''}{config.cell}"
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.embedding_dropout = ThreadDropout(config.embedding_dropout)
        self.word_dropout = ThreadDropout(config.word_dropout, whole_vectors=True)
        cell = CELLS[config.cell]
        directions = 2 if config.bidirectional else 1
        if config.bidirectional:
            # One module per direction and layer: the backward pass reads reversed texts.
            self.forward_layers = nn.ModuleList()
            self.backward_layers = nn.ModuleList()
            for layer in range(config.layers):
                width = config.embedding_dim if layer == 0 else 2 * config.hidden_size
                self.forward_layers.append(cell(width, config.hidden_size, batch_first=True))
                self.backward_layers.append(cell(width, config.hidden_size, batch_first=True))
        else:
            self.recurrent = cell(
                config.embedding_dim, config.hidden_size, num_layers=config.layers, batch_first=True,
                dropout=config.recurrent_dropout if config.layers > 1 else 0.0,
            )
        self.between_layers = ThreadDropout(config.recurrent_dropout)
        self.output_dropout = ThreadDropout(config.output_dropout)
        self.attention = (AdditiveAttention(directions * config.hidden_size, config.attention_size)
                          if config.pooling == "attention" else None)
        self.head = nn.Linear(directions * config.hidden_size, output_size(config.num_classes))
        self.reset_parameters()
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)

    def reset_parameters(self) -> None:
        """Keras's initialisers, so training behaves like the lecture's models."""
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        gates = GATES[self.config.cell]
        for module in self.modules():
            if isinstance(module, nn.RNNBase):
                for name, parameter in module.named_parameters():
                    if name.startswith("weight_ih"):
                        # glorot_uniform over Keras's (input, gates * units) kernel
                        fan_in, fan_out = parameter.shape[1], parameter.shape[0]
                        nn.init.uniform_(parameter, -math.sqrt(6 / (fan_in + fan_out)), math.sqrt(6 / (fan_in + fan_out)))
                    elif name.startswith("weight_hh"):
                        # orthogonal over Keras's (units, gates * units) recurrent kernel
                        nn.init.orthogonal_(parameter.data.T.view(parameter.shape[1], gates * parameter.shape[1]))
                    else:
                        nn.init.zeros_(parameter)
                        if self.config.cell == "lstm" and name.startswith("bias_ih"):
                            units = parameter.shape[0] // 4
                            nn.init.ones_(parameter[units : 2 * units])  # unit_forget_bias=True
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        """The lecture's model: embedding -> recurrent layers -> pooling -> dense. How the first two
        run is models/kernels.py's choice; for last-state pooling it keeps only each text's last state."""
        last = self.config.pooling == "last"
        states = kernels.run(self, ids, lengths, last_only=last)  # (batch, [time,] directions * hidden)
        pooled, weights = (states, None) if last else self.pool(states, lengths)  # (batch, directions * hidden)
        return Output(self.head(self.output_dropout(pooled)), weights)  # (batch, outputs)

    def vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """Word vectors (batch, time, embedding), stored time-major: recurrent kernels read them step by step."""
        vectors = self.embedding(ids.t()).transpose(0, 1)  # (batch, time, embedding)
        return self.embedding_dropout(self.word_dropout(vectors))  # (batch, time, embedding)

    def first_layers(self) -> list[nn.RNNBase]:
        """The recurrent modules that read the word vectors (with the layers stacked in them)."""
        return [cast(nn.RNNBase, self.forward_layers[0]), cast(nn.RNNBase, self.backward_layers[0])] if self.config.bidirectional else [self.recurrent]

    def pool(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One vector per text (batch, directions * hidden) from every step's states, and the attention
        weights (batch, time) where the pooling has them."""
        if self.attention is not None:
            return self.attention(states, lengths)
        if self.config.pooling == "last":
            return kernels.last_states(states, lengths, self.config.bidirectional), None
        return pool(states, lengths, self.config.pooling), None

    def summary_rows(self, maxlen: int) -> list[LayerRow]:
        c = self.config
        directions = 2 if c.bidirectional else 1
        sequence_out = c.pooling != "last"
        rows = [LayerRow("embedding", "Embedding", (None, maxlen, c.embedding_dim), count_parameters(self.embedding))]
        recurrent_modules = (
            list(zip(self.forward_layers, self.backward_layers)) if c.bidirectional else [(self.recurrent,)]
        )
        kind = KERAS_NAMES[c.cell] + (" (bidirectional)" if c.bidirectional else "") + (f" x{c.layers}" if c.layers > 1 else "")
        shape = (None, maxlen, directions * c.hidden_size) if sequence_out else (None, directions * c.hidden_size)
        parameters = sum(count_parameters(module) for group in recurrent_modules for module in group)
        rows.append(LayerRow(c.cell, kind, shape, parameters))
        if self.attention is not None:
            rows.append(LayerRow("attention", "AdditiveAttention", (None, directions * c.hidden_size),
                                 count_parameters(self.attention)))
        elif sequence_out:
            rows.append(LayerRow("pooling", f"{c.pooling.capitalize()}Pooling", (None, directions * c.hidden_size), 0))
        rows.append(LayerRow("dense", "Dense", (None, self.head.out_features), count_parameters(self.head)))
        return rows

    def keras_parameter_note(self) -> str | None:
        extra = sum(p.numel() for n, p in self.named_parameters() if "bias_hh" in n)
        if self.config.cell == "gru":
            return None  # Keras's GRU (reset_after=True) has both biases too
        return (f"Keras counts {count_parameters(self) - extra:,}: PyTorch's {KERAS_NAMES[self.config.cell]} "
                f"keeps a second bias vector (b_hh), {extra:,} parameters more")

