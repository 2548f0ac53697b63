"""Recurrent classifiers: Embedding -> RNN/LSTM/GRU (stacked, optionally bidirectional) -> pooling -> Dense.

Padding never reaches a prediction: tokens sit at the start of each row, so the recurrence
reads every real token before any padding, the last state is taken at each text's own last
token, and the backward direction of a bidirectional layer reads each text reversed within
its own length. This keeps cuDNN/oneDNN's fused kernels (no packing, no step loop in Python).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models import folded, recurrence
from seqlab.models.attention import AdditiveAttention, pool
from seqlab.models.dropout import ThreadDropout
from seqlab.models.base import LayerRow, Output, SequenceClassifier, count_parameters, output_size

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
KERAS_NAMES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
POOLINGS = ("last", "mean", "max", "attention")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_building = threading.Lock()  # one folded table built at a time (RecurrentClassifier._table)


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
        self._tables: dict[int, tuple] = {}  # first layers' folded input tables, for predicting (not saved)
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

    def train(self, mode: bool = True) -> "RecurrentClassifier":
        self._tables.clear()  # weights may change in between, also by writes no version counter sees (.data)
        return super().train(mode)

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
        if self.config.pooling == "last" and not self.config.bidirectional and self._from_table(self.recurrent, ids):
            last = folded.folded_last_states(self.recurrent, self._table(self.recurrent), ids, lengths)  # (batch, hidden)
            return Output(self.head(self.output_dropout(last)))  # (batch, outputs)
        states = self._states(ids, lengths)  # (batch, time, directions * hidden)
        if self.attention is not None:
            pooled, weights = self.attention(states, lengths)  # (batch, directions * hidden), (batch, time)
            return Output(self.head(self.output_dropout(pooled)), weights)  # (batch, outputs)
        pooled = self._pool(states, lengths)  # (batch, directions * hidden)
        return Output(self.head(self.output_dropout(pooled)))  # (batch, outputs)

    def _states(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The last layer's outputs at every step."""
        first = self.forward_layers[0] if self.config.bidirectional else self.recurrent
        from_table = self._from_table(first, ids)
        from_words = self._trains_from_words(first)
        if not self.config.bidirectional:
            if from_table:
                return self._folded(self.recurrent, ids)  # (batch, time, hidden)
            if from_words:
                return self._from_words(self.recurrent, ids)  # (batch, time, hidden)
            return _run(self.recurrent, self._vectors(ids))  # (batch, time, hidden)
        reverse = _reversal_index(lengths, ids.shape[1])  # (batch, time)
        for layer, (forward_rnn, backward_rnn) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if layer == 0 and from_table:
                ahead = self._folded(forward_rnn, ids)  # (batch, time, hidden)
                behind = self._folded(backward_rnn, ids.gather(1, reverse))  # (batch, time, hidden), reversed order
            elif layer == 0 and from_words:
                ahead = self._from_words(forward_rnn, ids)  # (batch, time, hidden)
                behind = self._from_words(backward_rnn, ids.gather(1, reverse))  # (batch, time, hidden), reversed order
            else:
                x = self._vectors(ids) if layer == 0 else self.between_layers(x)
                ahead = _run(forward_rnn, x)  # (batch, time, hidden)
                behind = _run(backward_rnn, _gather_time(x, reverse))  # (batch, time, hidden), reversed order
            x = torch.cat([ahead, _gather_time(behind, reverse)], dim=-1)  # (batch, time, 2 * hidden)
        return x

    def _vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """Word vectors (batch, time, embedding), stored time-major: recurrent kernels read them step by step."""
        vectors = self.embedding(ids.t()).transpose(0, 1)  # (batch, time, embedding)
        return self.embedding_dropout(self.word_dropout(vectors))  # (batch, time, embedding)

    def _folded(self, module: nn.RNNBase, ids: torch.Tensor) -> torch.Tensor:
        """`module` (a first layer) predicting from its table of every word's input projection (models/folded.py)."""
        return folded.folded_states(module, self._table(module), ids)  # (batch, time, hidden)

    def _from_words(self, module: nn.RNNBase, ids: torch.Tensor) -> torch.Tensor:
        """`module` (a first layer, with the layers stacked on it) fed by the input projection of the
        batch's distinct words (models/folded.py): the word vectors are never formed."""
        return recurrence.run_layers(module, projected=folded.folded_inputs(module, self.embedding, ids))  # (batch, time, hidden)

    def _trains_from_words(self, module: nn.RNNBase) -> bool:
        """Whether `module`, a first layer, trains on the projection of the batch's distinct words: an
        LSTM or GRU written out in models/recurrence.py, no dropout on word vectors, and nothing watching
        them (explanations substitute the embedding's output through a hook: they need every token's).
        (The SimpleRNN's epoch gained 15% too, but its training at these settings is chaotic, and the
        changed rounding moved its test accuracy by -8 to +1 point over three seeds: it keeps its vectors.)"""
        return (isinstance(module, (nn.LSTM, nn.GRU)) and self.training and self._vectors_unused()
                and recurrence.supports(module, self.embedding.weight))

    def _vectors_unused(self) -> bool:
        """Whether the word vectors may go unformed: no dropout on them draws masks (in training, or
        left on to sample predictions) and no hook on the embedding watches or replaces them."""
        drawing = any(dropout.training and dropout.p for dropout in (self.embedding_dropout, self.word_dropout))
        watched = (self.embedding._forward_hooks or self.embedding._forward_pre_hooks
                   or nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks)
        return not drawing and not watched

    def _from_table(self, module: nn.RNNBase, ids: torch.Tensor) -> bool:
        """Whether `module`, a first layer, predicts from a table: the model predicting, the word
        vectors unused and folded.can_fold."""
        return not self.training and self._vectors_unused() and folded.can_fold(module, ids)

    def _table(self, module: nn.RNNBase) -> tuple[torch.Tensor, ...]:
        """`module`'s folded weights, made again after any weight change that bumps a version counter
        (every PyTorch operation, and fit.adam's fused steps) and after training mode; a write
        through `.data` bumps none, so call .train() or .eval() after one."""
        parameters = [self.embedding.weight, *module.parameters()]
        key = tuple((p.data_ptr(), p._version) for p in parameters)  # changes with every weight update
        cached = self._tables.get(id(module))
        if cached is None or cached[0] != key:
            with _building:  # the shares of a batch ask at once: one builds, the others find it made
                cached = self._tables.get(id(module))
                if cached is None or cached[0] != key:
                    cached = self._tables[id(module)] = (key, folded.folded_weights(module, self.embedding.weight))
        return cached[1]

    def _pool(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch = torch.arange(states.shape[0], device=states.device)
        if self.config.pooling == "last":
            last = states[batch, lengths - 1]  # (batch, directions * hidden)
            if not self.config.bidirectional:
                return last
            # The backward direction's final state sits at each text's first token.
            hidden = self.config.hidden_size
            return torch.cat([last[:, :hidden], states[:, 0, hidden:]], dim=-1)
        return pool(states, lengths, self.config.pooling)

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


def _run(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """The outputs of every step: a loop of models/recurrence.py where it serves, else PyTorch's kernel."""
    return recurrence.run_layers(module, x) if recurrence.supports(module, x) else module(x)[0]


def _reversal_index(lengths: torch.Tensor, time: int) -> torch.Tensor:
    """For each text, positions L-1 .. 0 then its padding positions unchanged (an involution)."""
    steps = torch.arange(time, device=lengths.device).unsqueeze(0)  # (1, time)
    flipped = lengths.unsqueeze(1) - 1 - steps  # (batch, time)
    return torch.where(flipped >= 0, flipped, steps)


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (batch, time, features)
