"""Folded tables: the embedding and a first recurrent layer's input projection as one lookup.

Embedding then input projection is one linear map per word: (E W_ih^T + b)[id] = E[id] W_ih^T + b.
So to predict, the projection of every word in the vocabulary is computed once, a (vocabulary,
gates * hidden) table, and each text gathers its rows: no (batch x time x embedding) product,
which is most of a one-layer model's arithmetic. Training, the same fold over the batch's
distinct words only shrinks the projection and its gradient products (`folded_inputs`).

All three run the compiled loops of csrc/cells.cpp (models/native.py): each step one pass in
which a block of texts' recurrent product is summed in registers and goes, with their table rows,
into the cell update. Each text's result depends on its own rows alone: the same bits alone or in
any batch. (Where the loops were not built, the SimpleRNN gathers every step's rows at once and
works on them in place with PyTorch's operations; the LSTM and GRU run PyTorch's kernels.)
When a table is built and used is models/kernels.py's decision.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.models import native
from seqlab.models.recurrence import input_bias, tanh_steps


def folded_weights(module: nn.RNNBase, embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What `module` fed by `embedding` (vocabulary, features) predicts from: its table first."""
    hidden = module.hidden_size
    weight_ih, weight_hh, bias = module.get_parameter("weight_ih_l0"), module.get_parameter("weight_hh_l0"), input_bias(module)
    if isinstance(module, nn.LSTM):
        # PyTorch's gate rows are input, forget, cell, output; here the three sigmoid gates come first.
        order = torch.cat([torch.arange(0, 2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                           torch.arange(2 * hidden, 3 * hidden)]).to(weight_ih.device)
        table = torch.addmm(bias[order], embedding, weight_ih[order].t())  # (vocabulary, 4 * hidden)
        return table, weight_hh[order].t().contiguous()  # (hidden, 4 * hidden)
    table = torch.addmm(bias, embedding, weight_ih.t())  # (vocabulary, gates * hidden)
    if isinstance(module, nn.GRU):
        # The candidate's recurrent bias sits inside r * (h W_hn^T + b_hn): the loops add it there.
        bias_hh = module.get_parameter("bias_hh_l0")
        inner = torch.cat([torch.zeros_like(bias_hh[: 2 * hidden]), bias_hh[2 * hidden :]])  # (3 * hidden,)
        return table, weight_hh.t().contiguous(), inner  # (hidden, 3 * hidden), (3 * hidden,)
    return table, weight_hh.t().contiguous()  # (hidden, hidden)


def folded_inputs(module: nn.RNNBase, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """The first layer's input projection of every step (time, batch, gates * hidden) through a table
    of the batch's distinct words only, for training: a batch holds far fewer distinct words than
    tokens, so the projection and its two gradient products shrink (autograd adds each token's
    gradient into its word's row: index_select's backward, an index_add, sums them in the order
    advanced indexing's does, and faster)."""
    words, positions = torch.unique(ids.t(), return_inverse=True)  # (distinct,), (time, batch)
    table = nn.functional.linear(embedding(words), module.get_parameter("weight_ih_l0"), input_bias(module))  # (distinct, gates * hidden)
    return table.index_select(0, positions.reshape(-1)).view(*positions.shape, -1)  # (time, batch, gates * hidden)


def folded_states(module: nn.RNNBase, weights: tuple[torch.Tensor, ...], ids: torch.Tensor) -> torch.Tensor:
    """Outputs of every step (batch, time, hidden) for token ids (batch, time), from folded_weights(module, ...)."""
    if isinstance(module, nn.RNN) and native.kernels() is None:
        return _tanh_states(weights[0], weights[1], ids)
    steps = ids.t().contiguous().long()  # (time, batch)
    outputs = weights[0].new_empty(*steps.shape, module.hidden_size)  # (time, batch, hidden)
    lengths = torch.full((steps.shape[1],), steps.shape[0], dtype=torch.long)
    _run_loop(module, weights, steps, lengths, outputs, outputs.new_empty(0))
    return outputs.transpose(0, 1)  # (batch, time, hidden)


def folded_last_states(module: nn.RNNBase, weights: tuple[torch.Tensor, ...], ids: torch.Tensor,
                       lengths: torch.Tensor) -> torch.Tensor:
    """The output at each text's last token (batch, hidden): the LSTM and GRU keep no other step's,
    which saves writing a (time, batch, hidden) tensor."""
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest < 1 or longest > ids.shape[1]:
        raise ValueError(f"lengths must be between 1 and the ids' {ids.shape[1]} steps; got {shortest} to {longest}")
    if isinstance(module, nn.RNN) and native.kernels() is None:
        return _tanh_states(weights[0], weights[1], ids)[torch.arange(len(ids)), lengths - 1]
    steps = ids[:, :longest].t().contiguous().long()  # (time, batch): no step after the longest text
    last = weights[0].new_empty(len(ids), module.hidden_size)  # (batch, hidden)
    _run_loop(module, weights, steps, lengths.long().contiguous(), last.new_empty(0), last)
    return last


def _run_loop(module: nn.RNNBase, weights: tuple[torch.Tensor, ...], steps: torch.Tensor, lengths: torch.Tensor,
              outputs: torch.Tensor, last: torch.Tensor) -> None:
    """Every step's output into `outputs` (time, batch, hidden), or when it is empty, each text's
    last into `last` (batch, hidden), by the compiled loops of csrc/cells.cpp."""
    if isinstance(module, nn.LSTM):
        native.loaded().lstm_folded(*weights, steps, lengths, outputs, last, 3)  # 3: the cell gate's place in the table
    elif isinstance(module, nn.RNN):
        native.loaded().tanh_folded(*weights, steps, lengths, outputs, last)
    else:
        native.loaded().gru_folded(*weights, steps, lengths, outputs, last)


def _tanh_states(table: torch.Tensor, recurrent: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    steps = ids.t()  # (time, batch)
    time, batch = steps.shape
    states = table.index_select(0, steps.reshape(-1)).view(time, batch, -1)  # (time, batch, hidden): z, then h
    tanh_steps(states, recurrent)
    return states.transpose(0, 1)  # (batch, time, hidden)

