"""Region embeddings learned on unlabelled text, for the seq-cnn (Johnson & Zhang, 2015, "Semi-supervised
Convolutional Neural Networks for Text Categorization via Region Embedding": the tv-embedding).

A region of `width` consecutive words, read as a bag, is embedded as

    u(region) = ReLU(bias + table[w_1] + ... + table[w_width])                  (dimension values)

and trained to predict the words just outside it, `context` on each side, by word2vec's negative
sampling: each of those words is told apart from `negatives` noise words drawn from the unigram
distribution raised to 0.75. The `skip_frequent` most frequent words are never predicted; they say
little about a region. `seqlab train seq-cnn --init-from RUN` adds each region's u, held fixed, to
the seq-cnn's convolution (models/region.py), as Johnson & Zhang's semi-supervised seq-CNN does.

Ids are the encoder's, most frequent first (text/encoder.py), which `skip_frequent` relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from seqlab.errors import ConfigError
from seqlab.models.attention import length_mask
from seqlab.models.base import Output, SequenceClassifier
from seqlab.text.config import RESERVED

NAME = "region-embedding"


@dataclass
class RegionEmbeddingConfig:
    vocab_size: int = 30_000  # rows of the table (the encoder's max_features)
    dimension: int = 100  # values of each region's embedding (Johnson & Zhang: 100)
    width: int = 5  # words each region reads as a bag (Johnson & Zhang's region size for these embeddings)
    context: int = 5  # words predicted on each side of a region
    negatives: int = 10  # noise words drawn per region
    skip_frequent: int = 50  # the most frequent words (after the reserved ids) that are never predicted
    init_range: float = 0.1  # the table starts uniform in (-init_range, init_range); the output table at 0

    def __post_init__(self) -> None:
        for name in ("dimension", "width", "context", "negatives"):
            if getattr(self, name) < 1:
                raise ConfigError(f"the region embedding's {name} must be at least 1; got {getattr(self, name)}")
        if not 0 <= self.skip_frequent < self.vocab_size - len(RESERVED):
            raise ConfigError(f"skip_frequent must be from 0 to below the {self.vocab_size - len(RESERVED)} "
                              f"ordinary words of the vocabulary; got {self.skip_frequent}")

    @property
    def first_target(self) -> int:
        """The lowest id a region predicts."""
        return len(RESERVED) + self.skip_frequent


def embed_regions(ids: torch.Tensor, lengths: torch.Tensor, table: torch.Tensor, bias: torch.Tensor, width: int,
                  first: int, count: int) -> torch.Tensor:
    """(batch, count, dimension): region k reads text positions first + k .. first + k + width - 1, as a
    bag (positions outside the text add nothing), from (batch, time) ids and (batch,) lengths."""
    batch, time = ids.shape
    rows = functional.embedding(ids, table) * length_mask(lengths, time).unsqueeze(-1).to(table.dtype)  # (batch, time, dimension)
    left, right = max(0, -first), max(0, first + count + width - 1 - time)
    padded = functional.pad(rows, (0, 0, left, right))  # (batch, left + time + right, dimension)
    start = first + left
    total = padded[:, start : start + count]  # (batch, count, dimension)
    for offset in range(1, width):
        total = total + padded[:, start + offset : start + offset + count]
    return torch.relu(total + bias)  # (batch, count, dimension)


class RegionEmbeddingModel(SequenceClassifier):
    """forward(ids, lengths) -> Output(logits=(batch, 1) each text's summed negative-sampling loss,
    one region centred on each of its words): the Trainer's RegionPrediction objective adds them up."""

    # Noise words come from torch's generator; whole batches on one thread keep the draws in one order.
    splits_batches = False
    noise: torch.Tensor  # (vocab,) how often each id is drawn as a noise word

    def __init__(self, config: RegionEmbeddingConfig):
        super().__init__()
        self.config = config
        self.name = NAME
        self.embedding = nn.Embedding(config.vocab_size, config.dimension)  # the region table fine-tuning takes
        self.bias = nn.Parameter(torch.zeros(config.dimension))
        self.output = nn.Embedding(config.vocab_size, config.dimension)  # each word's vector as a prediction
        nn.init.uniform_(self.embedding.weight, -config.init_range, config.init_range)
        nn.init.zeros_(self.output.weight)
        self.register_buffer("noise", noise_weights(torch.ones(config.vocab_size), config))

    def set_word_counts(self, counts: torch.Tensor) -> None:
        """Draw noise words by these (vocab,) counts of each id in the texts to pretrain on."""
        self.noise.copy_(noise_weights(counts.to(self.noise), self.config))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        c = self.config
        batch, time = ids.shape
        half = c.width // 2  # the region centred on word t reads t - half .. t - half + width - 1
        on_word = length_mask(lengths, time)  # (batch, time)
        regions = embed_regions(ids, lengths, self.embedding.weight, self.bias, c.width, -half, time)[on_word]  # (words, dimension)
        reach = torch.cat([torch.arange(-half - c.context, -half), torch.arange(c.width - half, c.width - half + c.context)])
        where = torch.arange(time, device=ids.device)[:, None] + reach.to(ids.device)  # (time, 2 x context)
        targets = ids.gather(1, where.clamp(0, time - 1).reshape(1, -1).expand(batch, -1)).view(batch, time, -1)
        valid = (where >= 0) & (where < lengths.view(batch, 1, 1)) & (targets >= c.first_target)  # (batch, time, 2 x context)
        targets, valid = targets[on_word], valid[on_word]  # (words, 2 x context) each
        noise = torch.multinomial(self.noise, targets.shape[0] * c.negatives, replacement=True)
        positive = torch.einsum("wd,wkd->wk", regions, self.output(targets))  # (words, 2 x context)
        negative = torch.einsum("wd,wkd->wk", regions, self.output(noise.view(-1, c.negatives)))  # (words, negatives)
        predicted = valid.to(regions.dtype)
        loss = -(functional.logsigmoid(positive) * predicted).sum(1) \
            - functional.logsigmoid(-negative).mean(1) * predicted.sum(1)  # (words,): noise weighs as much as the targets
        text_of_word = torch.arange(batch, device=ids.device)[:, None].expand(batch, time)[on_word]  # (words,)
        return Output(torch.zeros(batch, dtype=loss.dtype, device=loss.device).index_add_(0, text_of_word, loss)[:, None])


def noise_weights(counts: torch.Tensor, config: RegionEmbeddingConfig) -> torch.Tensor:
    """(vocab,) unnormalised weights to draw noise words by: counts ** 0.75, 0 below the first target."""
    weights = counts.double().clamp(min=0).pow(0.75)
    weights[: config.first_target] = 0.0
    if not weights.sum() > 0:
        weights[config.first_target :] = 1.0
    return weights.float()
