"""A small Transformer encoder classifier: token + position embeddings, padding mask, N layers, pooling.

Padding never reaches a prediction: padded positions are masked out of every attention
(keys) and out of the pooling, so a real token's output never sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models.attention import AdditiveAttention, length_mask, pool
from seqlab.models.base import LayerRow, Output, SequenceClassifier, count_parameters, output_size

POOLINGS = ("mean", "max", "first", "attention")


@dataclass
class TransformerConfig:
    vocab_size: int = 10_000  # rows of the embedding table
    embedding_dim: int = 128  # model width: token vectors, position vectors and every layer's output
    heads: int = 4  # attention heads per layer (must divide embedding_dim)
    layers: int = 2  # encoder layers stacked
    hidden_size: int = 256  # width of each layer's feed-forward block
    max_positions: int = 4096  # longest text the sinusoidal position table covers
    pooling: str = "mean"  # how token outputs become one vector: mean, max, first (the start token) or attention
    attention_size: int = 64  # width of the additive attention's scoring layer (attention pooling only)
    num_classes: int = 2  # 2: one sigmoid output; more: softmax over classes
    embedding_dropout: float = 0.1  # dropout on token + position vectors
    dropout: float = 0.1  # dropout inside each encoder layer (attention weights and feed-forward)
    output_dropout: float = 0.1  # dropout before the output layer
    freeze_embeddings: bool = False  # keep the word vectors fixed (e.g. pretrained ones)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r} for the transformer; choose one of {', '.join(POOLINGS)}")
        if self.layers < 1 or self.heads < 1:
            raise ConfigError(f"layers and heads must be at least 1; got {self.layers} and {self.heads}")
        if self.embedding_dim % self.heads:
            raise ConfigError(f"embedding_dim ({self.embedding_dim}) must be a multiple of heads ({self.heads}); "
                              "change --embedding-dim or --heads")


def sinusoidal_positions(count: int, width: int) -> torch.Tensor:
    """The fixed position vectors of "Attention Is All You Need": sin on even, cos on odd features."""
    positions = torch.arange(count, dtype=torch.float32).unsqueeze(1)  # (count, 1)
    frequencies = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10_000.0) / width))
    table = torch.zeros(count, width)  # (count, width)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies[: width // 2])
    return table


class TransformerClassifier(SequenceClassifier):
    positions: torch.Tensor  # (max_positions, embedding_dim), a buffer

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.name = "transformer"
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.register_buffer("positions", sinusoidal_positions(config.max_positions, config.embedding_dim), persistent=False)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        layer = nn.TransformerEncoderLayer(
            config.embedding_dim, config.heads, config.hidden_size, config.dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, norm=nn.LayerNorm(config.embedding_dim),
                                             enable_nested_tensor=False)
        self.attention = (AdditiveAttention(config.embedding_dim, config.attention_size)
                          if config.pooling == "attention" else None)
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.head = nn.Linear(config.embedding_dim, output_size(config.num_classes))
        nn.init.normal_(self.embedding.weight, std=config.embedding_dim ** -0.5)
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        time = ids.shape[1]
        if time > self.config.max_positions:
            raise ConfigError(f"texts of {time} tokens exceed the transformer's max_positions "
                              f"({self.config.max_positions}); lower --maxlen or raise max_positions")
        scale = math.sqrt(self.config.embedding_dim)
        x = self.embedding(ids) * scale + self.positions[:time]  # (batch, time, embedding)
        mask = length_mask(lengths, time)  # (batch, time), True on tokens
        states = self.encoder(self.embedding_dropout(x), src_key_padding_mask=~mask)  # (batch, time, embedding)
        weights = None
        if self.attention is not None:
            pooled, weights = self.attention(states, lengths)  # (batch, embedding), (batch, time)
        elif self.config.pooling == "first":
            pooled = states[:, 0]  # (batch, embedding)
        else:
            pooled = pool(states, lengths, self.config.pooling)  # (batch, embedding)
        return Output(self.head(self.output_dropout(pooled)), weights)  # (batch, outputs)

    def summary_rows(self, maxlen: int) -> list[LayerRow]:
        c = self.config
        rows = [
            LayerRow("embedding", "Embedding + SinusoidalPositions", (None, maxlen, c.embedding_dim),
                     count_parameters(self.embedding)),
            LayerRow("encoder", f"TransformerEncoder x{c.layers} ({c.heads} heads)", (None, maxlen, c.embedding_dim),
                     count_parameters(self.encoder)),
        ]
        if self.attention is not None:
            rows.append(LayerRow("attention", "AdditiveAttention", (None, c.embedding_dim), count_parameters(self.attention)))
        else:
            rows.append(LayerRow("pooling", f"{c.pooling.capitalize()}Pooling", (None, c.embedding_dim), 0))
        rows.append(LayerRow("dense", "Dense", (None, self.head.out_features), count_parameters(self.head)))
        return rows
