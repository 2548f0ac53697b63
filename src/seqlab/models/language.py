"""A next-word language model whose body is a recurrent classifier's: pretrained, then fine-tuned.

The body is a one-directional RecurrentClassifier (embedding and recurrent layers; its head
unused), so `seqlab train MODEL --init-from RUN` copies its weights into a classifier of the same
architecture. The output is an adaptive softmax (Grave et al., 2017): frequent words get full
rows, rarer ones share smaller clusters, so a CPU can afford a 10k-50k word vocabulary.

Ids are the encoder's, most frequent first (text/encoder.py), which is the order the adaptive
softmax's cutoffs assume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models import kernels
from seqlab.models.base import Output, SequenceClassifier
from seqlab.models.dropout import ThreadDropout
from seqlab.models.recurrent import RecurrentClassifier, RecurrentConfig

NAME = "language-model"


@dataclass
class LanguageModelConfig:
    cell: str = "lstm"  # lstm | gru | rnn: the body's recurrent cell (the classifier fine-tuned later uses it too)
    vocab_size: int = 10_000  # rows of the embedding table (the encoder's max_features)
    embedding_dim: int = 128  # size of each word vector
    hidden_size: int = 256  # units of each recurrent layer
    layers: int = 1  # recurrent layers stacked
    embedding_dropout: float = 0.0  # dropout on word vectors
    word_dropout: float = 0.1  # share of words whose whole vector is dropped (AWD-LSTM's embedding dropout)
    recurrent_dropout: float = 0.0  # dropout between stacked layers
    output_dropout: float = 0.2  # dropout on the states before the softmax
    cutoffs: list[int] = field(default_factory=lambda: [2_000])  # adaptive-softmax cluster bounds (ids); empty: full softmax
    div_value: float = 4.0  # each tail cluster's projection is this many times narrower

    def __post_init__(self) -> None:
        if any(not 0 < c < self.vocab_size for c in self.cutoffs) or list(self.cutoffs) != sorted(set(self.cutoffs)):
            raise ConfigError(f"cutoffs must rise strictly between 0 and the vocabulary size {self.vocab_size}; "
                              f"got {self.cutoffs}")

    def body(self) -> RecurrentConfig:
        """The classifier config whose embedding and recurrent layers this model trains."""
        return RecurrentConfig(cell=self.cell, vocab_size=self.vocab_size, embedding_dim=self.embedding_dim,
                               hidden_size=self.hidden_size, layers=self.layers, pooling="last",
                               embedding_dropout=self.embedding_dropout, word_dropout=self.word_dropout,
                               recurrent_dropout=self.recurrent_dropout)


class LanguageModel(SequenceClassifier):
    """forward(ids, lengths) -> Output(logits=(batch, 1) summed negative log-likelihood of each
    text's next words): the Trainer's LanguageModelling objective adds them up."""

    splits_batches = True

    def __init__(self, config: LanguageModelConfig):
        super().__init__()
        self.config = config
        self.name = NAME
        self.body = RecurrentClassifier(config.body())
        self.body.head.requires_grad_(False)  # the classifier's head has no part in a language model
        self.dropout = ThreadDropout(config.output_dropout)
        if config.cutoffs:
            self.softmax: nn.Module = nn.AdaptiveLogSoftmaxWithLoss(config.hidden_size, config.vocab_size,
                                                                    list(config.cutoffs), config.div_value)
        else:
            self.softmax = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        states = kernels.run(self.body, ids, lengths)  # (batch, time, hidden)
        steps = torch.arange(ids.shape[1] - 1, device=ids.device)  # (time - 1,)
        inside = steps[None, :] < (lengths[:, None] - 1)  # (batch, time - 1): a next word exists
        read = self.dropout(states[:, :-1])[inside]  # (predictions, hidden)
        targets = ids[:, 1:][inside]  # (predictions,)
        if isinstance(self.softmax, nn.AdaptiveLogSoftmaxWithLoss):
            nll = -self.softmax(read, targets).output  # (predictions,)
        else:
            nll = nn.functional.cross_entropy(self.softmax(read), targets, reduction="none")  # (predictions,)
        rows = torch.arange(ids.shape[0], device=ids.device)[:, None].expand_as(inside)[inside]  # (predictions,)
        per_text = torch.zeros(ids.shape[0], device=ids.device, dtype=nll.dtype).index_add(0, rows, nll)  # (batch,)
        return Output(per_text.unsqueeze(-1))  # (batch, 1)

    def summary_rows(self, maxlen: int):
        return self.body.summary_rows(maxlen)[:-1]


def predictions(lengths: torch.Tensor) -> int:
    """How many next words a batch of texts of `lengths` predicts: each text's length less one."""
    return int((lengths - 1).clamp(min=0).sum())
