"""How a recurrent classifier's layers run: the one place that decides (`plan`) and runs them (`run`).

Two kernels do the work:

- seqlab's CPU loops (models/recurrence.py): the SimpleRNN's loop of in-place PyTorch operations,
  and the LSTM's and GRU's compiled loops (csrc/cells.cpp, built by models/native.py). They serve
  float32 on a CPU, where PyTorch's fused kernels spend most of a small layer's time on bookkeeping.
- PyTorch's own module (nn.RNN, nn.LSTM, nn.GRU: oneDNN on a CPU, cuDNN on a GPU) everywhere else:
  a GPU, bfloat16 or autocast, an exporter tracing the model (an ONNX graph needs PyTorch's own
  operations), a layer the loops do not cover, a machine where the compiled loops could not be built.

A first layer reads word vectors, and the embedding followed by the input projection is one linear
map per word (models/folded.py), so the (batch, time, embedding) vectors need not be formed:

- training an LSTM or GRU, the input projection is made for the batch's distinct words only;
- predicting, a table of every word's projection is gathered instead. Tables are built explicitly,
  from the weights of the moment, by `fold` (a model that will not change again, e.g. a Predictor's)
  or for the length of a `predicting` block; forward never builds, refreshes or guesses one.

Both need nothing to draw on or watch the word vectors: no dropout on them drawing masks, no hook on
the embedding (explanations replace its output through one).

A matrix product's last bits depend on how many rows it has, and a review must get the same
probability alone, in a server's merged batch and from the command line (tests/serve/test_parity.py).
So without gradients the LSTM and GRU run PyTorch's kernel wherever no table serves, and the LSTM
predicts fewer than LSTM_MIN_BATCH texts with PyTorch's kernel even when it has a table.

Every fast path equals PyTorch's module within 1e-5, outputs and gradients (tests/models/test_folded.py,
test_recurrence.py, test_equivalence.py).
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterable, Iterator, Protocol, cast

import torch
from torch import nn

from seqlab.models import folded, native, recurrence


class Directions(Protocol):
    """What this module reads of a recurrent classifier's config."""

    @property
    def bidirectional(self) -> bool: ...  # a right-to-left pass per layer beside the left-to-right one


class RecurrentModel(Protocol):
    """What this module reads of a recurrent classifier (models/recurrent.py's, which imports this
    module: named here, not imported back). Read-only members, so narrower types fit (an nn.LSTM
    for nn.RNNBase, a RecurrentConfig for Directions)."""

    @property
    def config(self) -> Directions: ...
    @property
    def training(self) -> bool: ...
    @property
    def embedding(self) -> nn.Embedding: ...
    @property
    def embedding_dropout(self) -> nn.Dropout: ...  # on word vectors
    @property
    def word_dropout(self) -> nn.Dropout: ...  # of whole word vectors
    @property
    def recurrent(self) -> nn.RNNBase: ...  # the layers of a one-direction model
    @property
    def forward_layers(self) -> nn.ModuleList: ...  # a bidirectional model's left-to-right layers
    @property
    def backward_layers(self) -> nn.ModuleList: ...  # and its right-to-left ones
    @property
    def between_layers(self) -> nn.Module: ...  # dropout between a bidirectional model's layers

    def vectors(self, ids: torch.Tensor) -> torch.Tensor: ...  # word vectors (batch, time, embedding) of ids (batch, time)


TABLE = "table"  # predicting from the layer's folded table
WORDS = "words"  # training from the input projection of the batch's distinct words, then seqlab's loop
LOOP = "loop"  # seqlab's loop over the layer's input vectors
PYTORCH = "pytorch"  # PyTorch's own module
LSTM_MIN_BATCH = 16  # the LSTM predicts fewer texts than this with PyTorch's kernel (see the module's docstring)

# Each folded first layer's table and recurrent weights (folded.folded_weights); weak keys, so a
# model's tables go with it, and a copy of a model has none until it is folded itself.
_tables: weakref.WeakKeyDictionary[nn.RNNBase, tuple[torch.Tensor, ...]] = weakref.WeakKeyDictionary()


def plan(module: nn.RNNBase, inputs: torch.Tensor, model: RecurrentModel | None = None) -> str:
    """How `module` runs on `inputs`: vectors (batch, time, features), or for a first layer of `model`
    (a RecurrentClassifier), its token ids (batch, time)."""
    if not (_loops_may_run(module.get_parameter("weight_ih_l0")) and _written_out(module)):
        return PYTORCH
    gradients = torch.is_grad_enabled()
    if not inputs.is_floating_point() and model is not None and _vectors_unused(model):
        enough = not isinstance(module, nn.LSTM) or inputs.shape[0] >= LSTM_MIN_BATCH
        if module in _tables and not gradients and inputs.numel() and enough:
            return TABLE
        if model.training and gradients and not isinstance(module, nn.RNN):
            # (The SimpleRNN's training at the lecture's settings is chaotic: the changed rounding
            # moves its test accuracy by points over seeds, so it keeps its word vectors.)
            return WORDS
    return LOOP if gradients or isinstance(module, nn.RNN) else PYTORCH


def run(model: RecurrentModel, ids: torch.Tensor, lengths: torch.Tensor, last_only: bool = False) -> torch.Tensor:
    """`model`'s recurrent layers on token ids (batch, time): every step's outputs of the last layer
    (batch, time, directions * hidden), or with `last_only` each text's state after its last token
    (batch, directions * hidden). The backward direction of a bidirectional layer reads each text
    reversed within its own length, so padding is never read before a real token."""
    if not model.config.bidirectional:
        module = model.recurrent
        if last_only and plan(module, ids, model) == TABLE:
            return folded.folded_last_states(module, _tables[module], ids, lengths)  # (batch, hidden)
        states = _first_layer(model, module, ids)  # (batch, time, hidden)
        return last_states(states, lengths, bidirectional=False) if last_only else states
    reverse = _reversal_index(lengths, ids.shape[1])  # (batch, time)
    x: torch.Tensor  # the previous layer's outputs (batch, time, 2 * hidden)
    for layer, (forward_rnn, backward_rnn) in enumerate(zip(cast("Iterable[nn.RNNBase]", model.forward_layers), cast("Iterable[nn.RNNBase]", model.backward_layers))):
        if layer == 0:
            ahead = _first_layer(model, forward_rnn, ids)  # (batch, time, hidden)
            behind = _first_layer(model, backward_rnn, ids.gather(1, reverse))  # (batch, time, hidden), reversed order
        else:
            x = model.between_layers(x)
            ahead = _layers(forward_rnn, x)  # (batch, time, hidden)
            behind = _layers(backward_rnn, _gather_time(x, reverse))  # (batch, time, hidden), reversed order
        x = torch.cat([ahead, _gather_time(behind, reverse)], dim=-1)  # (batch, time, 2 * hidden)
    return last_states(x, lengths, bidirectional=True) if last_only else x


def last_states(states: torch.Tensor, lengths: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """Each text's final state (batch, features) from every step's (batch, time, features): the forward
    direction's at its last token, a backward direction's at its first."""
    last = states[torch.arange(states.shape[0], device=states.device), lengths - 1]  # (batch, features)
    if not bidirectional:
        return last
    hidden = states.shape[-1] // 2
    return torch.cat([last[:, :hidden], states[:, 0, hidden:]], dim=-1)


def load_loops(model: nn.Module) -> None:
    """Load the compiled loops on this thread now if `model` has recurrent layers, before the threads a
    batch is split over start: loaded on one of them while another waited, the SimpleRNN's first sharded
    step was rounded otherwise in some runs (1 in 2-3), and `--seed 42` gave two different models."""
    if any(isinstance(module, nn.RNNBase) for module in model.modules()):
        native.kernels()


@contextmanager
def predicting(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode with its folded tables built from its weights of now; afterwards the tables
    go (unless the model was folded before) and every module's train/eval mode is as it was."""
    load_loops(model)
    modes = [(module, module.training) for module in model.modules()]
    was_folded = any(module in _tables for module in _foldable(model))
    model.eval()
    fold(model)
    try:
        yield model
    finally:
        if not was_folded:
            unfold(model)
        for module, mode in modes:
            module.training = mode


def fold(model: nn.Module) -> nn.Module:
    """Build `model`'s folded tables from its weights of now, for predicting; for a model that will not
    change again (a Predictor's), else use `predicting`. No-op for models without recurrent layers."""
    with torch.no_grad():
        for module in _foldable(model):
            _tables[module] = folded.folded_weights(module, model.get_parameter("embedding.weight"))
    return model


def unfold(model: nn.Module) -> nn.Module:
    """Drop `model`'s folded tables: its layers run from word vectors again."""
    for module in _foldable(model):
        _tables.pop(module, None)
    return model


def can_fold(module: nn.RNNBase) -> bool:
    """Whether `module` may predict from a folded table: one layer, in float32 on a CPU, of a kind
    seqlab's loops run."""
    return module.num_layers == 1 and _loops_may_run(module.get_parameter("weight_ih_l0")) and _written_out(module)


def _foldable(model: nn.Module) -> list[nn.RNNBase]:
    first_layers = getattr(model, "first_layers", None)  # only recurrent classifiers have them
    return [module for module in first_layers() if can_fold(module)] if first_layers else []


def _loops_may_run(weights: torch.Tensor) -> bool:
    """Weights in float32 on a CPU, outside autocast, and no exporter tracing the model."""
    tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
    return (weights.device.type == "cpu" and weights.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not tracing)


def _written_out(module: nn.RNNBase) -> bool:
    """One direction with biases: a tanh nn.RNN, or an nn.LSTM (without projection) or nn.GRU where
    the compiled loops were built."""
    if module.bidirectional or not module.bias or type(module) not in (nn.RNN, nn.LSTM, nn.GRU):
        return False
    if isinstance(module, nn.RNN):
        return module.nonlinearity == "tanh"
    return not module.proj_size and native.kernels() is not None


def _vectors_unused(model: RecurrentModel) -> bool:
    """Whether `model`'s word vectors may go unformed: no dropout on them draws masks (in training, or
    left on to sample predictions) and no hook on the embedding watches or replaces them."""
    drawing = any(dropout.training and dropout.p for dropout in (model.embedding_dropout, model.word_dropout))
    embedding = model.embedding
    watched = (embedding._forward_hooks or embedding._forward_pre_hooks  # (PyTorch has no public way to ask)
               or nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks)
    return not drawing and not watched


def _first_layer(model: RecurrentModel, module: nn.RNNBase, ids: torch.Tensor) -> torch.Tensor:
    """Outputs (batch, time, hidden) of `module`, fed by the embedding, with the layers stacked in it."""
    way = plan(module, ids, model)
    if way == TABLE:
        return folded.folded_states(module, _tables[module], ids)
    if way == WORDS:
        return recurrence.run_layers(module, projected=folded.folded_inputs(module, model.embedding, ids))
    x = model.vectors(ids)  # (batch, time, embedding)
    return recurrence.run_layers(module, x) if way == LOOP else module(x)[0]


def _layers(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """Outputs (batch, time, hidden) of `module` on vectors (batch, time, features)."""
    return recurrence.run_layers(module, x) if plan(module, x) == LOOP else module(x)[0]


def _reversal_index(lengths: torch.Tensor, time: int) -> torch.Tensor:
    """For each text, positions L-1 .. 0 then its padding positions unchanged (an involution)."""
    steps = torch.arange(time, device=lengths.device).unsqueeze(0)  # (1, time)
    flipped = lengths.unsqueeze(1) - 1 - steps  # (batch, time)
    return torch.where(flipped >= 0, flipped, steps)


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (batch, time, features)
