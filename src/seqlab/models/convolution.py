"""A convolutional text classifier (Kim, 2014): Embedding -> Conv1d of several widths -> pooling -> Dense.

Each filter reads a window of consecutive words (a learned n-gram detector); pooling keeps,
per filter, its strongest (max) or average (mean) response over the text. Padding never
reaches a prediction: word vectors on padding are zeroed before the convolutions, windows
start only at a text's own tokens (those near its end read zeros past it, whatever the
padding), and pooling covers only those windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from seqlab.errors import ConfigError
from seqlab.models.attention import length_mask
from seqlab.models.base import LayerRow, Output, SequenceClassifier, count_parameters, output_size
from seqlab.models.dropout import ThreadDropout

POOLINGS = ("max", "mean")


@dataclass
class ConvolutionConfig:
    vocab_size: int = 10_000  # rows of the embedding table
    embedding_dim: int = 128  # size of each word vector
    kernel_sizes: tuple[int, ...] = (3, 4, 5)  # words each group of filters reads at once
    hidden_size: int = 128  # filters per kernel size (the pooled vector has len(kernel_sizes) x this)
    pooling: str = "max"  # over the windows of each text: max (Kim's) or mean
    num_classes: int = 2  # 2: one sigmoid output; more: softmax over classes
    embedding_dropout: float = 0.0  # dropout on word vectors
    word_dropout: float = 0.0  # share of words whose whole vector is dropped
    output_dropout: float = 0.5  # dropout on the pooled features, before the output layer (Kim's 0.5)
    freeze_embeddings: bool = False  # keep the word vectors fixed (e.g. pretrained ones)

    def __post_init__(self) -> None:
        self.kernel_sizes = tuple(int(size) for size in self.kernel_sizes)  # config.json holds a list
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r} for the cnn; choose one of {', '.join(POOLINGS)}")
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ConfigError(f"kernel_sizes must be one or more positive widths; got {list(self.kernel_sizes)}")
        if self.hidden_size < 1:
            raise ConfigError(f"hidden_size (filters per kernel size) must be at least 1; got {self.hidden_size}")


class ConvolutionClassifier(SequenceClassifier):
    def __init__(self, config: ConvolutionConfig):
        super().__init__()
        self.config = config
        self.name = "cnn"
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.embedding_dropout = ThreadDropout(config.embedding_dropout)
        self.word_dropout = ThreadDropout(config.word_dropout, whole_vectors=True)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.hidden_size, size) for size in config.kernel_sizes
        )
        self.output_dropout = ThreadDropout(config.output_dropout)
        self.head = nn.Linear(len(config.kernel_sizes) * config.hidden_size, output_size(config.num_classes))
        # Keras's U(-0.05, 0.05), as the recurrent models have, not PyTorch's N(0, 1): Adam moves each
        # weight by about the learning rate per step, so unit-sized word vectors learn far more slowly
        # (full IMDb, 4 epochs: test accuracy 0.846 with N(0, 1), 0.888 with this).
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        time = ids.shape[1]
        on_token = length_mask(lengths, time).to(self.embedding.weight.dtype)  # (batch, time): 1 on tokens
        x = self.embedding(ids) * on_token.unsqueeze(-1)  # (batch, time, embedding), zero on padding
        x = self.embedding_dropout(self.word_dropout(x)).transpose(1, 2)  # (batch, embedding, time)
        x = functional.pad(x, (0, max(self.config.kernel_sizes) - 1))  # (batch, embedding, time + widest - 1)
        starts = on_token.unsqueeze(1)  # (batch, 1, time): 1 where a window starts on a token
        pooled = []
        for convolution in self.convolutions:
            # ReLU's outputs are >= 0, so zeroing the windows that start on padding never changes a max.
            windows = torch.relu(convolution(x)[:, :, :time]) * starts  # (batch, filters, time)
            if self.config.pooling == "max":
                pooled.append(windows.amax(2))  # (batch, filters)
            else:
                pooled.append(windows.sum(2) / lengths.unsqueeze(1).to(x.dtype))  # (batch, filters)
        features = torch.cat(pooled, dim=1)  # (batch, kernel sizes x filters)
        return Output(self.head(self.output_dropout(features)))  # (batch, outputs)

    def summary_rows(self, maxlen: int) -> list[LayerRow]:
        c = self.config
        rows = [LayerRow("embedding", "Embedding", (None, maxlen, c.embedding_dim), count_parameters(self.embedding))]
        for size, convolution in zip(c.kernel_sizes, self.convolutions):
            rows.append(LayerRow(f"conv1d_{size}", f"Conv1D (width {size}, relu)", (None, maxlen, c.hidden_size),
                                 count_parameters(convolution)))
        rows.append(LayerRow("pooling", f"Global{c.pooling.capitalize()}Pooling1D + Concatenate",
                             (None, len(c.kernel_sizes) * c.hidden_size), 0))
        rows.append(LayerRow("dense", "Dense", (None, self.head.out_features), count_parameters(self.head)))
        return rows
