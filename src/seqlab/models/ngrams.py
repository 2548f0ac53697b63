"""A bag of word and n-gram vectors (fastText: Joulin et al., 2017, "Bag of Tricks for Efficient
Text Classification"): the mean of the vectors of a text's words and of its n-grams -> Dense.

Word order reaches the model only through the n-grams: "not good" gets a vector of its own,
apart from "not" and "good". N-grams are not in the vocabulary; each is hashed from its word
ids into one of ``buckets`` rows of a second table (fastText's hashing trick), so the table's
size is fixed whatever the corpus. Padding never reaches a prediction: the mean covers only the
text's own words and the n-grams that lie wholly inside it.

Two routes give the same mean (an oracle test holds them within 1e-5): bags (EmbeddingBag sums
over the flat ids of each text, no (batch, time, embedding) tensor; optionally sparse gradients,
which plain SGD applies to the touched rows only) whenever no dropout is active, and the padded,
masked route that the word and vector dropouts need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models.attention import length_mask
from seqlab.models.base import LayerRow, Output, SequenceClassifier, count_parameters, output_size
from seqlab.models.dropout import ThreadDropout

POOLINGS = ("mean",)
HASHES = ("squared", "linear")
HASH_PRIME = 2_147_483_647  # 2^31 - 1: the hash stays below it, so each product stays below 2^62 (no int64 overflow)
HASH_MULTIPLIER = 1_103_515_245  # large against word ids: (a, b) and (a + 1, b) land far apart modulo HASH_PRIME
HASH_OFFSET = 12_345  # added to the square, so that the pair hashing to 0 does not stay 0
LINEAR_MULTIPLIER = 1_000_003  # the "linear" hash of runs saved before "squared"


@dataclass
class NgramBagConfig:
    vocab_size: int = 10_000  # rows of the word table
    embedding_dim: int = 64  # size of each word and n-gram vector
    ngrams: int = 2  # longest n-gram with a vector of its own (1: words only)
    buckets: int = 262_144  # rows of the n-gram table; n-grams beyond it share rows (fastText: 2 million)
    # "squared": a linear hash modulo a prime, squared modulo it, then modulo buckets. "linear" (runs saved before
    # it) took a linear hash modulo buckets, which crowds pairs into 3a + b when buckets is 1,000,000 or 2,000,000
    ngram_hash: str = "squared"
    ngram_init: float = 0.05  # n-gram vectors start uniform in (-ngram_init, ngram_init); fastText: 1 / embedding_dim
    binary: bool = False  # each distinct word and n-gram counts once in its text's mean (NB-LR's binary counts)
    pooling: str = "mean"  # the mean over the text's words and n-grams (fastText's; the only choice)
    num_classes: int = 2  # 2: one sigmoid output; more: softmax over classes
    embedding_dropout: float = 0.0  # dropout on the word and n-gram vectors
    word_dropout: float = 0.0  # share of words (and n-grams) whose whole vector is dropped
    output_dropout: float = 0.0  # dropout on the mean vector, before the output layer
    freeze_embeddings: bool = False  # keep the word vectors fixed (e.g. pretrained ones); n-grams still learn
    sparse_gradients: bool = False  # gradients of the two tables hold only the rows a batch touched (needs optimizer "sgd")
    # What a field meant in saved configs written before it existed (runs.py reads them with these)
    SAVED_BEFORE: ClassVar[dict] = {"ngram_hash": "linear"}

    def __post_init__(self) -> None:
        if self.ngram_hash not in HASHES:
            raise ConfigError(f"ngram_hash must be one of {', '.join(HASHES)}; got {self.ngram_hash!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"the fasttext model averages its vectors (pooling 'mean'); got {self.pooling!r}")
        if self.ngrams < 1:
            raise ConfigError(f"ngrams must be at least 1 (1: words only, 2: words and word pairs); got {self.ngrams}")
        if self.ngrams > 1 and self.buckets < 1:
            raise ConfigError(f"buckets (rows for the n-gram vectors) must be at least 1; got {self.buckets}")
        if self.ngram_init < 0:
            raise ConfigError(f"ngram_init (the range the n-gram vectors start in) must be 0 or more; got {self.ngram_init}")
        if self.sparse_gradients and (self.embedding_dropout or self.word_dropout):
            raise ConfigError("sparse_gradients takes the bag route, which has no word or embedding dropout; "
                              "set embedding_dropout and word_dropout to 0, or sparse_gradients to false")


def ngram_rows(ids: torch.Tensor, n: int, buckets: int, ngram_hash: str) -> torch.Tensor:
    """(batch, time) word ids -> (batch, time - n + 1) rows of the n-grams starting at each position. A linear
    hash alone leaves the pairs of consecutive ids in runs of consecutive rows, which overlap for some bucket
    counts; its square modulo the prime scatters them (tests/models/test_models.py holds the spread)."""
    starts = ids.shape[1] - n + 1
    if ngram_hash == "linear":
        rows = ids[:, :starts].long() % buckets  # (batch, starts)
        for step in range(1, n):
            rows = (rows * LINEAR_MULTIPLIER + ids[:, step : step + starts].long()) % buckets  # (batch, starts)
        return rows
    rows = ids[:, :starts].long()  # (batch, starts); word ids are below HASH_PRIME
    for step in range(1, n):
        rows = (rows * HASH_MULTIPLIER + ids[:, step : step + starts].long()) % HASH_PRIME  # (batch, starts)
    return ((rows * rows + HASH_OFFSET) % HASH_PRIME) % buckets  # (batch, starts)


def first_places(values: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """(batch, places) values, (batch, places) True inside the text -> (batch, places) True at one place inside
    of each distinct value in its row."""
    marked = torch.where(inside, values, -1)  # (batch, places): padding sorts first and matches no value
    ordered, order = marked.sort(dim=1)  # (batch, places) each
    first = torch.ones_like(inside)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return torch.zeros_like(inside).scatter(1, order, first) & inside  # (batch, places)


class NgramBagClassifier(SequenceClassifier):
    # A text costs a few lookups here, while each thread's gradient of the n-gram table is the whole
    # table: split over threads, a training step is slower than whole (docs/performance.md).
    splits_batches = False
    # Its operations on a batch are too small to share: a second thread only waits on the first, and on a
    # busy machine (more threads than free cores) such waits make a step many times slower.
    training_threads = 1

    def __init__(self, config: NgramBagConfig):
        super().__init__()
        self.config = config
        self.name = "fasttext"
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.ngram_embedding = nn.Embedding(config.buckets, config.embedding_dim) if config.ngrams > 1 else None
        self.embedding_dropout = ThreadDropout(config.embedding_dropout)
        self.word_dropout = ThreadDropout(config.word_dropout, whole_vectors=True)
        self.output_dropout = ThreadDropout(config.output_dropout)
        self.head = nn.Linear(config.embedding_dim, output_size(config.num_classes))
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)  # Keras's, as the other models
        if self.ngram_embedding is not None:
            nn.init.uniform_(self.ngram_embedding.weight, -config.ngram_init, config.ngram_init)
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)

    @property
    def steps_itself(self) -> bool:
        """Whether training may take `sgd_step` (training/fused.py): the bag route, and no output dropout either."""
        c = self.config
        return not (c.embedding_dropout or c.word_dropout or c.output_dropout)

    def _masked_sum(self, vectors: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """(batch, places, embedding) vectors, (batch, places) 1 inside the text -> (batch, embedding) sum."""
        vectors = self.embedding_dropout(self.word_dropout(vectors))
        return (vectors * inside.unsqueeze(-1)).sum(1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        dropping = self.training and (self.config.embedding_dropout > 0 or self.config.word_dropout > 0)
        mean = self._padded_mean(ids, lengths) if dropping else self._bag_mean(ids, lengths)  # (batch, embedding)
        return Output(self.head(self.output_dropout(mean)))  # (batch, outputs)

    def _bag_mean(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, time) ids, (batch,) lengths -> (batch, embedding) mean, from EmbeddingBag sums of flat ids."""
        return self._bag_sums(self._bags(ids, lengths), self.config.sparse_gradients)[0]

    def _bags(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(batch, time) ids, (batch,) lengths -> per table read: (table, (rows,) flat rows, (batch,) rows per text)."""
        bags = [self._bag(self.embedding.weight, ids, lengths)]
        for n in range(2, self.config.ngrams + 1):
            if ids.shape[1] < n or self.ngram_embedding is None:
                break
            within = (lengths - n + 1).clamp(min=0)  # (batch,): the n-grams lying wholly inside each text
            rows = ngram_rows(ids, n, self.config.buckets, self.config.ngram_hash)  # (batch, time - n + 1)
            bags.append(self._bag(self.ngram_embedding.weight, rows, within))
        return bags

    def _bag(self, table: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch, places) rows of `table`, the first (batch,) `counts` of each inside its text -> (table, flat
        rows, (batch,) rows per text); binary: each distinct row once per text."""
        inside = length_mask(counts, rows.shape[1])  # (batch, places)
        if not self.config.binary:
            return table, rows[inside], counts
        size, texts = table.shape[0], torch.arange(rows.shape[0], device=rows.device)  # texts: (batch,)
        keys = (texts.unsqueeze(1) * size + rows)[inside].unique()  # (distinct,) sorted, so text by text
        owners = keys // size  # (distinct,): the text each row is in
        # scatter_add, not bincount: the TorchScript ONNX exporter has no bincount
        return table, keys % size, torch.zeros_like(counts).scatter_add(0, owners, torch.ones_like(owners))

    @staticmethod
    def _bag_sums(bags: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], sparse: bool
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The bags of `_bags` -> (batch, embedding) mean over all of them and (batch,) how many rows it covers."""
        total, count = None, None
        for table, rows, counts in bags:
            offsets = torch.cumsum(counts, 0) - counts  # (batch,): where each text's bag starts in the flat rows
            part = F.embedding_bag(rows, table, offsets, mode="sum", sparse=sparse)  # (batch, embedding)
            total = part if total is None else total + part
            count = counts if count is None else count + counts
        assert total is not None and count is not None  # the word bag is always there
        count = count.clamp(min=1)  # (batch,)
        return total / count.to(total.dtype).unsqueeze(1), count

    @torch.no_grad()
    def sgd_step(self, ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, learning_rate: float
                 ) -> torch.Tensor:
        """One step of plain SGD on the batch's mean cross-entropy, its gradients worked out here instead of by
        autograd (the same update as loss.backward() then torch.optim.SGD's step, within float rounding; an oracle
        test holds them together), touching only the rows the batch read. Returns the (batch, outputs) logits the
        step started from. Only for the bag route: no dropout of any kind."""
        bags = self._bags(ids, lengths)
        mean, count = self._bag_sums(bags, sparse=False)  # (batch, embedding), (batch,)
        logits = self.head(mean)  # (batch, outputs)
        if logits.shape[1] == 1:
            error = torch.sigmoid(logits) - labels.to(logits.dtype).unsqueeze(1)  # (batch, 1)
        else:
            error = torch.softmax(logits, dim=1)
            error[torch.arange(len(labels), device=labels.device), labels] -= 1  # (batch, classes)
        error /= max(len(labels), 1)  # the mean over the batch
        # The step of every row a text read: its share of the mean's gradient, times the rate. The rate goes in
        # here, not as index_add_'s alpha, which takes a far slower path on CPU.
        row_step = (error @ self.head.weight) * (-learning_rate / count.to(error.dtype).unsqueeze(1))  # (batch, embedding)
        self.head.weight.sub_(error.T @ mean, alpha=learning_rate)
        assert self.head.bias is not None  # nn.Linear's default
        self.head.bias.sub_(error.sum(0), alpha=learning_rate)
        for table, rows, counts in bags:
            if table.requires_grad:  # the word table is frozen with freeze_embeddings
                table.index_add_(0, rows, row_step.repeat_interleave(counts, dim=0))  # (rows, embedding) added
        return logits

    def _padded_mean(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, time) ids, (batch,) lengths -> (batch, embedding) mean over masked (batch, places, embedding) vectors."""
        time, dtype = ids.shape[1], self.embedding.weight.dtype
        inside = self._counted(ids, length_mask(lengths, time)).to(dtype)  # (batch, time)
        total = self._masked_sum(self.embedding(ids), inside)  # (batch, embedding)
        count = inside.sum(1)  # (batch,): words, then n-grams, in the mean
        for n in range(2, self.config.ngrams + 1):
            if time < n:
                break  # no text in the batch is long enough for an n-gram
            assert self.ngram_embedding is not None  # made when config.ngrams > 1
            rows = ngram_rows(ids, n, self.config.buckets, self.config.ngram_hash)  # (batch, time - n + 1)
            within = (lengths - n + 1).clamp(min=0)  # (batch,): the n-grams lying wholly inside each text
            inside = self._counted(rows, length_mask(within, rows.shape[1])).to(dtype)  # (batch, time - n + 1)
            total = total + self._masked_sum(self.ngram_embedding(rows), inside)
            count = count + inside.sum(1)
        return total / count.clamp(min=1).unsqueeze(1)  # (batch, embedding)

    def _counted(self, rows: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """(batch, places) True inside the text -> True where a place counts in the mean (binary: once per row)."""
        return first_places(rows, inside) if self.config.binary else inside

    def summary_rows(self, maxlen: int) -> list[LayerRow]:
        c = self.config
        rows = [LayerRow("embedding", "Embedding (words)", (None, maxlen, c.embedding_dim),
                         count_parameters(self.embedding))]
        if self.ngram_embedding is not None:
            kind = "word pairs" if c.ngrams == 2 else f"2- to {c.ngrams}-grams"
            places = sum(max(maxlen - n + 1, 0) for n in range(2, c.ngrams + 1))
            rows.append(LayerRow("ngram_embedding", f"Embedding (hashed {kind})", (None, places, c.embedding_dim),
                                 count_parameters(self.ngram_embedding)))
        rows.append(LayerRow("pooling", "GlobalAveragePooling1D", (None, c.embedding_dim), 0))
        rows.append(LayerRow("dense", "Dense", (None, self.head.out_features), count_parameters(self.head)))
        return rows

