"""A convolution over one-hot words (Johnson & Zhang, 2015, "Effective Use of Word Order for Text
Categorization with Convolutional Neural Networks": seq-CNN) -> max over each text's regions -> Dense.

A filter reads a region of `region_size` consecutive words as the concatenation of their one-hot
vectors, so its response is a sum of one weight per slot of the region:

    response(region at t) = ReLU(b + W_0[w_t] + W_1[w_t+1] + ... + W_{r-1}[w_t+r-1])

That is a lookup, not a matrix product: the model keeps one row per word holding its weights for
every slot (the `embedding` table, vocab x (region_size x filters)), looks each word up once and adds
the slots' columns shifted by one position each. With sparse gradients plain SGD updates only the
rows of the words a batch holds, which keeps the large table cheap on a CPU.

Each text is padded by region_size - 1 zero words on both sides (Johnson & Zhang's padding), so its
first and last words reach every slot and a one-word text has region_size regions. Padding never
reaches a prediction: word rows on padding are zeroed, and pooling covers only regions holding at
least one of the text's words.
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

POOLINGS = ("max",)
LOOKUP_VALUES = 1 << 25  # word-table values the sparse route looks up at once (128 MiB in float32)


@dataclass
class RegionConvolutionConfig:
    vocab_size: int = 30_000  # rows of the word table (Johnson & Zhang: the 30,000 most frequent words)
    region_size: int = 3  # consecutive words each filter reads (their one-hot vectors concatenated)
    hidden_size: int = 1000  # filters (feature maps); the pooled vector has this many values
    pooling: str = "max"  # over each text's regions (Johnson & Zhang's single max-pooling unit for sentiment)
    num_classes: int = 2  # 2: one sigmoid output; more: softmax over classes
    output_dropout: float = 0.5  # dropout on the pooled features, before the output layer
    init_range: float = 0.01  # the word table starts uniform in (-init_range, init_range)
    sparse_gradients: bool = False  # the word table's gradient is a sparse tensor (needs optimizer "sgd" or "adagrad")

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"the seq-cnn max-pools its regions (pooling 'max'); got {self.pooling!r}")
        if self.region_size < 1:
            raise ConfigError(f"region_size must be at least 1 word; got {self.region_size}")
        if self.hidden_size < 1:
            raise ConfigError(f"hidden_size (filters) must be at least 1; got {self.hidden_size}")
        if self.init_range <= 0:
            raise ConfigError(f"init_range must be positive; got {self.init_range}")


class RegionConvolutionClassifier(SequenceClassifier):
    # One lookup and a few additions per word: each thread's gradient of the large table would cost more
    # to add up than the work it splits.
    splits_batches = False

    def __init__(self, config: RegionConvolutionConfig):
        super().__init__()
        self.config = config
        self.name = "seq-cnn"
        # Row w: word w's weights for slot 0, then slot 1, ... of a region (region_size x hidden_size).
        self.embedding = nn.Embedding(config.vocab_size, config.region_size * config.hidden_size,
                                      sparse=config.sparse_gradients)
        self.bias = nn.Parameter(torch.zeros(config.hidden_size))
        self.output_dropout = ThreadDropout(config.output_dropout)
        self.head = nn.Linear(config.hidden_size, output_size(config.num_classes))
        nn.init.uniform_(self.embedding.weight, -config.init_range, config.init_range)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        if self._uses_region_max_pool():
            features = RegionMaxPool.apply(ids, lengths, self.embedding.weight, self.bias, self.config.region_size,
                                           self.config.sparse_gradients)  # (batch, hidden)
        else:
            features = self.features(ids, lengths)  # (batch, hidden)
        return Output(self.head(self.output_dropout(features)))  # (batch, outputs)

    def _uses_region_max_pool(self) -> bool:
        """The one choice of route. RegionMaxPool (its gradient reaches only the rows behind each
        filter's strongest region, and it never holds more than a slice of the batch's lookups) serves
        training and plain predictions; the autograd route of `features` serves what needs the
        embedding's own output or a traceable graph: gradients in evaluation mode (integrated-gradients
        explanations hook the embedding) and the ONNX export. The two agree within 1e-5 in outputs and
        gradients (tests/models/test_region.py)."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
            return False
        return self.training or not torch.is_grad_enabled()

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, time) ids, (batch,) lengths -> (batch, hidden) the strongest response of each filter."""
        c = self.config
        batch, time = ids.shape
        width, filters = c.region_size, c.hidden_size
        on_token = length_mask(lengths, time).to(self.embedding.weight.dtype)  # (batch, time)
        rows = self.embedding(ids) * on_token.unsqueeze(-1)  # (batch, time, width x filters), zero on padding
        rows = functional.pad(rows, (0, 0, width - 1, width - 1)).view(batch, time + 2 * (width - 1), width, filters)
        regions = time + width - 1  # region s reads padded positions s .. s + width - 1
        response = rows[:, 0:regions, 0]  # (batch, regions, filters)
        for slot in range(1, width):
            response = response + rows[:, slot : slot + regions, slot]  # (batch, regions, filters)
        response = torch.relu(response + self.bias)  # (batch, regions, filters)
        # Region s holds a word of the text when s < length + width - 1; ReLU's outputs are >= 0, so
        # zeroing the others never changes a max.
        inside = length_mask(lengths + width - 1, regions).to(response.dtype)  # (batch, regions)
        return (response * inside.unsqueeze(-1)).amax(1)  # (batch, filters)

    def summary_rows(self, maxlen: int) -> list[LayerRow]:
        c = self.config
        regions = maxlen + c.region_size - 1
        return [
            LayerRow("embedding", f"Embedding (one-hot words x {c.region_size} slots)",
                     (None, maxlen, c.region_size * c.hidden_size), count_parameters(self.embedding)),
            LayerRow("regions", f"Conv1D on one-hot words (width {c.region_size}, relu)", (None, regions, c.hidden_size),
                     self.bias.numel()),
            LayerRow("pooling", "GlobalMaxPooling1D", (None, c.hidden_size), 0),
            LayerRow("dense", "Dense", (None, self.head.out_features), count_parameters(self.head)),
        ]


class RegionMaxPool(torch.autograd.Function):
    """`RegionConvolutionClassifier.features` with a gradient built from the max's winners only.

    Max pooling passes each (text, filter) gradient to one region, so the table's gradient has at
    most batch x filters x region_size nonzero values, however long the texts: the backward pass
    makes those values directly (a sparse tensor when the table wants one) instead of a dense
    (batch, time, region_size x filters) gradient of every lookup."""

    @staticmethod
    def forward(ctx, ids: torch.Tensor, lengths: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                width: int, sparse: bool) -> torch.Tensor:
        batch, time = ids.shape
        filters = bias.shape[0]
        regions = time + width - 1
        chunk = max(1, LOOKUP_VALUES // (time * width * filters))  # texts whose lookups are held at once
        bests, places = [], []
        for first in range(0, batch, chunk):
            part, part_lengths = ids[first : first + chunk], lengths[first : first + chunk]
            texts = part.shape[0]
            rows = functional.embedding(part, weight).view(texts, time, width, filters)  # (texts, time, width, filters)
            rows.masked_fill_(~length_mask(part_lengths, time)[:, :, None, None], 0.0)
            response = bias.expand(texts, regions, filters).contiguous()  # (texts, regions, filters)
            for slot in range(width):  # word p reaches region p + width - 1 - slot through this slot
                start = width - 1 - slot
                response[:, start : start + time] += rows[:, :, slot]
            response.relu_()
            response.masked_fill_(~length_mask(part_lengths + width - 1, regions)[:, :, None], 0.0)
            part_best, part_where = response.max(1)  # (texts, filters) each
            bests.append(part_best)
            places.append(part_where)
        best, where = torch.cat(bests), torch.cat(places)  # (batch, filters) each
        ctx.save_for_backward(ids, lengths, best, where)
        ctx.width, ctx.table_shape, ctx.sparse = width, weight.shape, sparse
        return best

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ids, lengths, best, where = ctx.saved_tensors
        width, (vocab, columns) = ctx.width, ctx.table_shape
        batch, time = ids.shape
        filters = best.shape[1]
        grad = grad * (best > 0).to(grad.dtype)  # (batch, filters): ReLU passes nothing where it was 0
        word_rows, word_columns, values = [], [], []
        filter_ids = torch.arange(filters, device=ids.device).expand(batch, filters)  # (batch, filters)
        for slot in range(width):
            position = where - (width - 1) + slot  # (batch, filters): the word in this slot of the winning region
            inside = (position >= 0) & (position < lengths.unsqueeze(1))  # (batch, filters)
            word_rows.append(ids.gather(1, position.clamp(0, time - 1))[inside])
            word_columns.append((slot * filters + filter_ids)[inside])
            values.append(grad[inside])
        index = torch.stack([torch.cat(word_rows).long(), torch.cat(word_columns)])  # (2, nonzeros)
        table = torch.sparse_coo_tensor(index, torch.cat(values), (vocab, columns),
                                        check_invariants=False)  # (vocab, width x filters)
        return None, None, table if ctx.sparse else table.to_dense(), grad.sum(0), None, None
