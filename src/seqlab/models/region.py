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

Fine-tuned from a region embedding learned on unlabelled text (`seqlab train seq-cnn --init-from RUN`
of a `seqlab pretrain --objective region-embedding` run; models/region_embedding.py), each region's
response also gets V u, where u is the fixed embedding of the `context_width` words centred on the
region and V (context_dim x filters) is learned: Johnson & Zhang's semi-supervised seq-CNN.
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
from seqlab.models.region_embedding import embed_regions

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
    context_dim: int = 0  # values of the fixed region embedding added to each region (0: none; --init-from sets it)
    context_width: int = 5  # words that region embedding reads, centred on each region

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"the seq-cnn max-pools its regions (pooling 'max'); got {self.pooling!r}")
        if self.region_size < 1:
            raise ConfigError(f"region_size must be at least 1 word; got {self.region_size}")
        if self.hidden_size < 1:
            raise ConfigError(f"hidden_size (filters) must be at least 1; got {self.hidden_size}")
        if self.init_range <= 0:
            raise ConfigError(f"init_range must be positive; got {self.init_range}")
        if self.context_dim < 0 or self.context_width < 1:
            raise ConfigError(f"context_dim must be 0 or more and context_width at least 1; got {self.context_dim} "
                              f"and {self.context_width}")


class RegionConvolutionClassifier(SequenceClassifier):
    # One lookup and a few additions per word: each thread's gradient of the large table would cost more
    # to add up than the work it splits.
    splits_batches = False
    context_embedding: torch.Tensor  # (vocab, context_dim) buffer, with context_dim only
    context_bias: torch.Tensor  # (context_dim,) buffer, with context_dim only

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
        self.context: nn.Parameter | None = None
        if config.context_dim:
            # The pretrained region embedding, fixed (buffers: no optimizer sees them); V is learned.
            self.register_buffer("context_embedding", torch.zeros(config.vocab_size, config.context_dim))
            self.register_buffer("context_bias", torch.zeros(config.context_dim))
            self.context = nn.Parameter(torch.empty(config.context_dim, config.hidden_size))  # V: (context_dim, filters)
            nn.init.uniform_(self.context, -config.init_range, config.init_range)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> Output:
        if self._uses_region_max_pool():
            context = self.region_context(ids, lengths)  # (batch, regions, context_dim) or None
            features = RegionMaxPool.apply(ids, lengths, self.embedding.weight, self.bias, self.config.region_size,
                                           self.config.sparse_gradients, context, self.context)  # (batch, hidden)
        else:
            features = self.features(ids, lengths)  # (batch, hidden)
        return Output(self.head(self.output_dropout(features)))  # (batch, outputs)

    def region_context(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """(batch, regions, context_dim) the fixed embedding of the context_width words centred on each
        region (region s reads text positions s - region_size + 1 .. s), or None without one."""
        c = self.config
        if not c.context_dim:
            return None
        centre = (c.region_size - 1) // 2 - (c.region_size - 1)  # region s's centre word is s + centre
        with torch.no_grad():
            return embed_regions(ids, lengths, self.context_embedding, self.context_bias, c.context_width,
                                 centre - c.context_width // 2, ids.shape[1] + c.region_size - 1)

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
        context = self.region_context(ids, lengths)
        if context is not None and self.context is not None:
            response = response + context @ self.context  # (batch, regions, filters)
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
            *([LayerRow("context", f"Dense on fixed region embeddings ({c.context_dim} x {c.context_width} words)",
                        (None, regions, c.hidden_size), self.context.numel())] if self.context is not None else []),
            LayerRow("pooling", "GlobalMaxPooling1D", (None, c.hidden_size), 0),
            LayerRow("dense", "Dense", (None, self.head.out_features), count_parameters(self.head)),
        ]


class RegionMaxPool(torch.autograd.Function):
    """`RegionConvolutionClassifier.features` with a gradient built from the max's winners only.

    Max pooling passes each (text, filter) gradient to one region, so the table's gradient has at
    most batch x filters x region_size nonzero values, however long the texts: the backward pass
    makes those values directly (a sparse tensor when the table wants one) instead of a dense
    (batch, time, region_size x filters) gradient of every lookup. A fixed `context` (batch, regions,
    context_dim) adds `context @ mix` to every response; mix's gradient also comes from the winners."""

    @staticmethod
    def forward(ctx, ids: torch.Tensor, lengths: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                width: int, sparse: bool, context: torch.Tensor | None = None,
                mix: torch.Tensor | None = None) -> torch.Tensor:
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
            if context is None or mix is None:
                response = bias.expand(texts, regions, filters).contiguous()  # (texts, regions, filters)
            else:
                response = torch.addmm(bias, context[first : first + chunk].reshape(-1, context.shape[-1]),
                                       mix).view(texts, regions, filters)  # (texts, regions, filters)
            for slot in range(width):  # word p reaches region p + width - 1 - slot through this slot
                start = width - 1 - slot
                response[:, start : start + time] += rows[:, :, slot]
            response.relu_()
            response.masked_fill_(~length_mask(part_lengths + width - 1, regions)[:, :, None], 0.0)
            part_best, part_where = response.max(1)  # (texts, filters) each
            bests.append(part_best)
            places.append(part_where)
        best, where = torch.cat(bests), torch.cat(places)  # (batch, filters) each
        ctx.save_for_backward(ids, lengths, best, where, context)
        ctx.width, ctx.table_shape, ctx.sparse = width, weight.shape, sparse
        return best

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ids, lengths, best, where, context = ctx.saved_tensors
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
        mix = None
        if context is not None:
            winners = context.gather(1, where.unsqueeze(-1).expand(-1, -1, context.shape[-1]))  # (batch, filters, context_dim)
            mix = torch.einsum("bfd,bf->df", winners, grad)  # (context_dim, filters)
        return None, None, table if ctx.sparse else table.to_dense(), grad.sum(0), None, None, None, mix
