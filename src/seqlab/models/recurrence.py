"""The SimpleRNN's loop written out for CPUs, as one autograd Function per layer.

PyTorch's fused CPU kernel (oneDNN) spends most of a SimpleRNN's time on bookkeeping around
tiny matrix products: predicting 512 reviews of 200 tokens took 86 ms there and 24 ms here,
a training step 68 ms there and 60 ms here. The input projection of every time step is one
large product done by autograd (``linear`` over all tokens at once); only the recurrent
product stays in the loop, two operations per step forward and two backward, written by hand,
and dW_hh computed as one product after the loop. (The same written out for the LSTM was
slower than oneDNN's, which stays in use for LSTM and GRU.)

The arithmetic is PyTorch's own (both biases), on the nn.RNN module's weights, so saved
models are unchanged; tests/models/test_recurrence.py checks outputs and every gradient
against nn.RNN. Tensors are time-major inside: (time, batch, features).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _TanhRecurrence(torch.autograd.Function):
    """h_t = tanh(z_t + h_{t-1} W_hh^T), z_t = x_t W_ih^T + b_ih + b_hh given."""

    @staticmethod
    def forward(ctx, projected: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        time, batch, hidden = projected.shape
        states = projected.new_empty(time + 1, batch, hidden)  # h_0 .. h_T
        states[0].zero_()
        w_t = w_hh.t()
        for step in range(time):
            torch.addmm(projected[step], states[step], w_t, out=states[step + 1]).tanh_()
        ctx.save_for_backward(states, w_hh)
        return states[1:]  # (time, batch, hidden)

    @staticmethod
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, w_hh = ctx.saved_tensors
        hidden = states.shape[-1]
        through_tanh = 1 - states[1:] * states[1:]  # (time, batch, hidden): tanh' at every step, at once
        grad_projected = torch.empty_like(through_tanh)  # dLoss/dz_t
        torch.mul(grad_states[-1], through_tanh[-1], out=grad_projected[-1])
        for step in range(grad_states.shape[0] - 2, -1, -1):
            # dLoss/dh_t = its own gradient + dLoss/dz_{t+1} W_hh, then through tanh: one addmm, one mul
            torch.addmm(grad_states[step], grad_projected[step + 1], w_hh, out=grad_projected[step])
            grad_projected[step].mul_(through_tanh[step])
        grad_w_hh = grad_projected.reshape(-1, hidden).t() @ states[:-1].reshape(-1, hidden)  # (hidden, hidden)
        return grad_projected, grad_w_hh


def supports(module: nn.RNNBase, x: torch.Tensor) -> bool:
    """Whether `module` on `x` takes the loop written here: a one-directional tanh nn.RNN with
    biases, float32 on CPU outside autocast. Elsewhere (a GPU: cuDNN) PyTorch's own kernel is the better one."""
    return (type(module) is nn.RNN and module.nonlinearity == "tanh" and module.bias and not module.bidirectional
            and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu"))


def run_layers(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """`module`'s output for batch-first `x` (batch, time, features): every layer, one direction,
    zero initial state; dropout between layers as the module applies it."""
    inputs = x.transpose(0, 1)  # (time, batch, features)
    for layer in range(module.num_layers):
        if layer and module.dropout and module.training:
            inputs = F.dropout(inputs, module.dropout, training=True)
        weight_ih = getattr(module, f"weight_ih_l{layer}")
        bias = getattr(module, f"bias_ih_l{layer}") + getattr(module, f"bias_hh_l{layer}")
        projected = F.linear(inputs, weight_ih, bias)  # (time, batch, hidden), every step at once
        inputs = _TanhRecurrence.apply(projected.contiguous(), getattr(module, f"weight_hh_l{layer}"))
    return inputs.transpose(0, 1)  # (batch, time, hidden)


# Predicting: the embedding folded into the first layer's input projection.
#
# Embedding then input projection is one linear map per word: (E W_ih^T + b)[id] = E[id] W_ih^T + b.
# So for predictions the projection of every word in the vocabulary is computed once (a
# (vocabulary, hidden) table) and each text gathers its rows: no (batch x time x embedding)
# product, which is two thirds of a SimpleRNN's arithmetic. Predicting IMDb's 25,000 test
# reviews with the lecture's SimpleRNN: 15,438 -> 30,626 reviews/s. (The LSTM and GRU written the
# same way, with their gates in a Python loop, were slower than oneDNN's kernel once the batch
# is split over two threads, 0.88x and 1.14x, and far slower for one review: they keep oneDNN.)
# Tables are recomputed whenever a weight changes (parameters' versions and storage are the key).


def can_fold(module: nn.RNNBase, ids: torch.Tensor) -> bool:
    """Whether `module` may predict from a folded table: a one-layer, one-direction tanh nn.RNN,
    float32 on CPU outside autocast, predicting (no gradients, eval mode)."""
    weights = module.weight_ih_l0
    return (type(module) is nn.RNN and module.num_layers == 1 and supports(module, weights)
            and ids.device == weights.device and not torch.is_grad_enabled() and not module.training)


def folded_weights(module: nn.RNN, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(table, recurrent weight transposed) of `module` fed by `embedding` (vocabulary, features)."""
    bias = module.bias_ih_l0 + module.bias_hh_l0
    return torch.addmm(bias, embedding, module.weight_ih_l0.t()), module.weight_hh_l0.t()  # (vocabulary, hidden)


def folded_states(table: torch.Tensor, recurrent: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Outputs of every step for token ids (batch, time), predicting."""
    steps = ids.t()  # (time, batch)
    time, batch = steps.shape
    projected = table.index_select(0, steps.reshape(-1)).view(time, batch, -1)  # (time, batch, hidden)
    states = torch.empty_like(projected)
    previous = table.new_zeros(batch, table.shape[1])
    for step in range(time):
        previous = torch.addmm(projected[step], previous, recurrent, out=states[step]).tanh_()
    return states.transpose(0, 1)  # (batch, time, hidden)
