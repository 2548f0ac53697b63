"""Predicting from folded tables: the embedding and a first recurrent layer's input projection as one lookup.

Embedding then input projection is one linear map per word: (E W_ih^T + b)[id] = E[id] W_ih^T + b.
So to predict, the projection of every word in the vocabulary is computed once, a (vocabulary,
gates * hidden) table kept until a weight changes, and each text gathers its rows: no (batch x
time x embedding) product, which is most of a one-layer model's arithmetic.

The SimpleRNN gathers every step's rows at once and works on them in place (two operations a
step). The LSTM and GRU run a loop over steps, each step one recurrent product and one pass that
reads its texts' table rows and applies the cell: the compiled loops of csrc/cells.cpp
(models/native.py). Where those could not be built, the same loop in PyTorch operations
(8 a step) compiled by TorchScript, which runs it without Python's interpreter lock so the
shares of a batch run at once on their cores, gathering each step's rows into one small buffer
that stays in cache (gathering every step at once made a 52 MB tensor per 256-review share).
Predicting IMDb's 25,000 test reviews, two threads, fresh processes alternating: the GRU's
TorchScript loop 32,000-33,400 reviews/s, compiled 46,900-48,800; the LSTM's 30,600-31,200 and
37,700-38,400.

TorchScript is deprecated in favour of torch.compile, which would unroll a loop of 200 steps
and compile it again for every text length; where scripting fails too, the loop runs in
Python (slower, same results). oneDNN's LSTM kernel answers a few reviews faster than
TorchScript's loop (1 review: 0.37 against 0.93 ms), so small LSTM batches keep it. The compiled
loop answers one review in 0.33 ms against oneDNN's 0.60, but they are kept on oneDNN too: a
matrix product's last bits depend on how many rows it has, and a review must get the same
probability alone, in a server's merged batch and from the command line (tests/serve/test_parity.py).

Outputs equal the modules' own within 1e-5 (tests/models/test_folded.py, test_equivalence.py).
"""

from __future__ import annotations

import threading
import warnings
from typing import Callable, List  # TorchScript reads typing.List

import torch
from torch import nn

from seqlab.models import native
from seqlab.models.recurrence import input_bias, on_cpu_in_float32

LSTM_MIN_BATCH = 16  # below this many texts the LSTM keeps oneDNN's kernel (see the module's docstring)


def can_fold(module: nn.RNNBase, ids: torch.Tensor) -> bool:
    """Whether `module` may predict from a folded table: one layer, one direction, with biases
    (a tanh nn.RNN, an nn.LSTM without projection for 16 texts or more, an nn.GRU), float32 on CPU
    outside autocast, predicting (no gradients, eval mode)."""
    kind = type(module)
    if ids.numel() == 0 or kind not in (nn.RNN, nn.LSTM, nn.GRU):
        return False
    if module.num_layers != 1 or module.bidirectional or not module.bias:
        return False
    if kind is nn.RNN and module.nonlinearity != "tanh":
        return False
    if kind is nn.LSTM and (module.proj_size or ids.shape[0] < LSTM_MIN_BATCH):
        return False
    weights = module.weight_ih_l0  # (tables are cached by version counters, which inference tensors lack)
    return (on_cpu_in_float32(weights) and ids.device == weights.device and not torch.is_grad_enabled()
            and not module.training and not weights.is_inference())


def folded_weights(module: nn.RNNBase, embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What `module` fed by `embedding` (vocabulary, features) predicts from: its table first."""
    hidden = module.hidden_size
    weight_ih, weight_hh, bias = module.weight_ih_l0, module.weight_hh_l0, input_bias(module)
    if isinstance(module, nn.LSTM):
        # PyTorch's gate rows are input, forget, cell, output; here the three sigmoid gates come first.
        order = torch.cat([torch.arange(0, 2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                           torch.arange(2 * hidden, 3 * hidden)]).to(weight_ih.device)
        table = torch.addmm(bias[order], embedding, weight_ih[order].t())  # (vocabulary, 4 * hidden)
        return table, weight_hh[order].t().contiguous()  # (hidden, 4 * hidden)
    table = torch.addmm(bias, embedding, weight_ih.t())  # (vocabulary, gates * hidden)
    if isinstance(module, nn.GRU):
        # The candidate's recurrent bias sits inside r * (h W_hn^T + b_hn): the loops add it there.
        bias_hh = module.bias_hh_l0
        inner = torch.cat([torch.zeros_like(bias_hh[: 2 * hidden]), bias_hh[2 * hidden :]])  # (3 * hidden,)
        return table, weight_hh.t().contiguous(), inner  # (hidden, 3 * hidden), (3 * hidden,)
    return table, weight_hh.t()  # (hidden, hidden)


def folded_inputs(module: nn.RNNBase, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """The first layer's input projection of every step (time, batch, gates * hidden) through a table
    of the batch's distinct words only, for training: a 64-review share of 200 tokens holds ~2,300
    distinct words for 12,800 tokens, so the projection and its two gradient products shrink ~5x
    (autograd adds each token's gradient into its word's row)."""
    words, positions = torch.unique(ids.t(), return_inverse=True)  # (distinct,), (time, batch)
    table = nn.functional.linear(embedding(words), module.weight_ih_l0, input_bias(module))  # (distinct, gates * hidden)
    return table[positions]  # (time, batch, gates * hidden)


def folded_states(module: nn.RNNBase, weights: tuple[torch.Tensor, ...], ids: torch.Tensor) -> torch.Tensor:
    """Outputs of every step (batch, time, hidden) for token ids (batch, time), from folded_weights(module, ...)."""
    if isinstance(module, nn.RNN):
        return _tanh_states(*weights, ids)
    steps = ids.t().contiguous().long()  # (time, batch)
    outputs = weights[0].new_empty(*steps.shape, module.hidden_size)  # (time, batch, hidden)
    lengths = torch.full((steps.shape[1],), steps.shape[0], dtype=torch.long)
    _run_loop(module, weights, steps, lengths, outputs, outputs.new_empty(0))
    return outputs.transpose(0, 1)  # (batch, time, hidden)


def folded_last_states(module: nn.RNNBase, weights: tuple[torch.Tensor, ...], ids: torch.Tensor,
                       lengths: torch.Tensor) -> torch.Tensor:
    """The output at each text's last token (batch, hidden): the LSTM and GRU keep no other step's,
    which saves writing a (time, batch, hidden) tensor (~10% of the loop's time)."""
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest < 1 or longest > ids.shape[1]:
        raise ValueError(f"lengths must be between 1 and the ids' {ids.shape[1]} steps; got {shortest} to {longest}")
    if isinstance(module, nn.RNN):
        return _tanh_states(*weights, ids)[torch.arange(len(ids)), lengths - 1]
    steps = ids[:, :longest].t().contiguous().long()  # (time, batch): no step after the longest text
    last = weights[0].new_empty(len(ids), module.hidden_size)  # (batch, hidden)
    _run_loop(module, weights, steps, lengths.long().contiguous(), last.new_empty(0), last)
    return last


def _run_loop(module: nn.RNNBase, weights: tuple[torch.Tensor, ...], steps: torch.Tensor, lengths: torch.Tensor,
              outputs: torch.Tensor, last: torch.Tensor) -> None:
    """Every step's output into `outputs` (time, batch, hidden), or when it is empty, each text's
    last into `last` (batch, hidden): by the compiled loops of csrc/cells.cpp where they were
    built, else by the TorchScript loops below."""
    compiled = native.kernels()
    if compiled is not None:
        if isinstance(module, nn.LSTM):
            compiled.lstm_folded(*weights, steps, lengths, outputs, last, 3)  # 3: the cell gate's place in the table
        else:
            compiled.gru_folded(*weights, steps, lengths, outputs, last)
        return
    if outputs.numel():
        stops, finishing = [], []
    else:
        # Which texts end at which step: steps in increasing order, and the texts ending at each.
        ends, order = torch.sort(lengths - 1)
        ending, counts = torch.unique_consecutive(ends, return_counts=True)
        stops, finishing = ending.tolist(), list(torch.split(order, counts.tolist()))
        outputs = last.new_empty(2, *last.shape)
    loop = _compiled(_lstm_loop if isinstance(module, nn.LSTM) else _gru_loop)
    with torch.jit.optimized_execution(False):  # (this thread only) nothing to optimize; saves ~50 ms of profiling runs
        loop(*weights, steps, outputs, stops, finishing, last)


def _tanh_states(table: torch.Tensor, recurrent: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    steps = ids.t()  # (time, batch)
    time, batch = steps.shape
    states = table.index_select(0, steps.reshape(-1)).view(time, batch, -1)  # (time, batch, hidden): z, then h
    views = states.unbind(0)  # (batch, hidden) each
    views[0].tanh_()
    for step in range(1, time):
        views[step].addmm_(views[step - 1], recurrent).tanh_()
    return states.transpose(0, 1)  # (batch, time, hidden)


# The loops take token ids time-major (time, batch). Step t's output goes to outputs[t % slots]:
# every step's with a slot per step, else two slots in turn; and the texts in finishing[k], which
# end at step stops[k], copy theirs to `last`. Written in the Python TorchScript compiles.

def _lstm_loop(table: torch.Tensor, recurrent: torch.Tensor, steps: torch.Tensor, outputs: torch.Tensor,
               stops: List[int], finishing: List[torch.Tensor], last: torch.Tensor) -> None:
    time, batch, hidden, slots = steps.shape[0], steps.shape[1], recurrent.shape[0], outputs.shape[0]
    gates = table.new_empty(batch, 4 * hidden)  # this step's input, forget, output and cell gates
    cell = table.new_zeros(batch, hidden)
    squashed = table.new_empty(batch, hidden)  # tanh(cell)
    previous = table.new_zeros(batch, hidden)
    sigmoids, candidate = gates[:, : 3 * hidden], gates[:, 3 * hidden :]
    input_gate, forget_gate, output_gate = gates[:, :hidden], gates[:, hidden : 2 * hidden], gates[:, 2 * hidden : 3 * hidden]
    stop = 0
    for step in range(time):
        torch.index_select(table, 0, steps[step], out=gates)
        gates.addmm_(previous, recurrent)
        sigmoids.sigmoid_()
        candidate.tanh_()
        cell.mul_(forget_gate).addcmul_(input_gate, candidate)  # c = f c + i g
        torch.tanh(cell, out=squashed)
        previous = outputs[step % slots]
        torch.mul(output_gate, squashed, out=previous)  # h = o tanh(c)
        if stop < len(stops) and stops[stop] == step:
            last.index_copy_(0, finishing[stop], previous.index_select(0, finishing[stop]))
            stop += 1


def _gru_loop(table: torch.Tensor, recurrent: torch.Tensor, inner_bias: torch.Tensor, steps: torch.Tensor,
              outputs: torch.Tensor, stops: List[int], finishing: List[torch.Tensor], last: torch.Tensor) -> None:
    time, batch, hidden, slots = steps.shape[0], steps.shape[1], recurrent.shape[0], outputs.shape[0]
    gates = table.new_empty(batch, 3 * hidden)  # this step's reset, update and candidate inputs
    from_state = table.new_empty(batch, 3 * hidden)  # h W_hh^T + (0, 0, b_hn)
    difference = table.new_empty(batch, hidden)
    previous = table.new_zeros(batch, hidden)
    reset_update, reset, update = gates[:, : 2 * hidden], gates[:, :hidden], gates[:, hidden : 2 * hidden]
    candidate = gates[:, 2 * hidden :]
    state_reset_update, state_candidate = from_state[:, : 2 * hidden], from_state[:, 2 * hidden :]
    stop = 0
    for step in range(time):
        torch.index_select(table, 0, steps[step], out=gates)
        torch.addmm(inner_bias, previous, recurrent, out=from_state)
        reset_update.add_(state_reset_update).sigmoid_()
        candidate.addcmul_(reset, state_candidate).tanh_()  # n = tanh(x_n + r (h W_hn^T + b_hn))
        torch.sub(previous, candidate, out=difference)
        previous = outputs[step % slots]
        torch.addcmul(candidate, update, difference, out=previous)  # h = n + z (h_previous - n)
        if stop < len(stops) and stops[stop] == step:
            last.index_copy_(0, finishing[stop], previous.index_select(0, finishing[stop]))
            stop += 1


_compiled_loops: dict[Callable, Callable] = {}
_compiling = threading.Lock()  # the shares of a batch ask at once


def _compiled(loop: Callable) -> Callable:
    """`loop` compiled by TorchScript, once per process; `loop` itself where that fails."""
    with _compiling:
        if loop not in _compiled_loops:
            _compiled_loops[loop] = _script(loop)
        return _compiled_loops[loop]


def _script(loop: Callable) -> Callable:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # deprecated, kept for this: see the module's docstring
            return torch.jit.script(loop)
    except Exception:  # noqa: BLE001 - a PyTorch without TorchScript, or one that cannot compile the loop
        return loop
