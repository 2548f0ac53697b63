"""Recurrent layers written out for CPUs, as one autograd Function per layer.

PyTorch's fused CPU kernels (oneDNN) spend most of a small recurrent layer's time on
bookkeeping around tiny matrix products. Here the input projection of every time step is one
large product done by autograd (``linear`` over all tokens at once, or a table of the batch's
distinct words: models/folded.py), and only the recurrent product stays in the loop; the
gradient of W_hh is one product after it. Inputs arrive time-major in memory (the model
gathers its word vectors that way), so no large tensor is transposed.

- The SimpleRNN: two in-place PyTorch operations a step forward and two backward, looped by
  csrc/cells.cpp where it was built (else from Python: the same operations and results).
- The LSTM and the GRU: the compiled loops of csrc/cells.cpp (models/native.py), one product and
  one fused pass a step each way.

Which layers run here, and when, is models/kernels.py's decision. The arithmetic is PyTorch's own
(both biases), on the nn.RNN/nn.LSTM/nn.GRU module's weights, so saved models are unchanged;
tests/models/test_recurrence.py checks outputs and every gradient against the modules. Tensors
are time-major inside: (time, batch, features).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from seqlab.models import native


def tanh_steps(states: torch.Tensor, w_t: torch.Tensor) -> None:
    """The SimpleRNN's loop in place over `states` (time, batch, hidden), holding z_t on entry:
    h_t = tanh(z_t + h_{t-1} W_hh^T), given w_t = W_hh^T. Each step updates its own slice of the
    buffer in place (a step's slice is one contiguous block, and an out= product would first copy
    its bias operand into the output): two operations a step, run by csrc/cells.cpp where it was
    built (the same operations, without Python between the steps), else from here."""
    compiled = native.kernels()
    if compiled is not None:
        compiled.tanh_forward(states, w_t)
        return
    steps = states.unbind(0)  # (batch, hidden) each
    steps[0].tanh_()
    for step in range(1, len(steps)):
        steps[step].addmm_(steps[step - 1], w_t).tanh_()


class _TanhRecurrence(torch.autograd.Function):
    """h_t = tanh(z_t + h_{t-1} W_hh^T), h_{-1} = 0, z_t = x_t W_ih^T + b_ih + b_hh given (tanh_steps)."""

    @staticmethod
    def forward(ctx, projected: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        states = projected.clone(memory_format=torch.contiguous_format)  # (time, batch, hidden): z, then h
        tanh_steps(states, w_hh.t())
        ctx.save_for_backward(states, w_hh)
        return states

    @staticmethod
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, w_hh = ctx.saved_tensors
        hidden = states.shape[-1]
        through_tanh = torch.addcmul(states.new_ones(()), states, states, value=-1)  # (time, batch, hidden): 1 - h^2
        grad_projected = grad_states.clone(memory_format=torch.contiguous_format)  # dLoss/dh, then dLoss/dz
        compiled = native.kernels()
        if compiled is not None:
            compiled.tanh_backward(grad_projected, through_tanh, w_hh)
        else:
            steps, slopes = grad_projected.unbind(0), through_tanh.unbind(0)
            steps[-1].mul_(slopes[-1])
            for step in range(len(steps) - 2, -1, -1):
                # dLoss/dh_t = its own gradient + dLoss/dz_{t+1} W_hh, then through tanh: one addmm, one mul
                steps[step].addmm_(steps[step + 1], w_hh).mul_(slopes[step])
        grad_w_hh = grad_projected[1:].reshape(-1, hidden).t() @ states[:-1].reshape(-1, hidden)  # (hidden, hidden)
        return grad_projected, grad_w_hh


class _LSTMRecurrence(torch.autograd.Function):
    """PyTorch's LSTM given z_t = x_t W_ih^T + b_ih + b_hh, zero initial state: the loops of csrc/cells.cpp.

    Forward keeps the activated gates and the cells of every step; backward turns dLoss/dh of
    every step into dLoss/dz (from which autograd makes the input projection's gradients) and dW_hh."""

    @staticmethod
    def forward(ctx, projected: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        gates, states, cells = native.loaded().lstm_forward(
            projected.contiguous(), w_hh.t().contiguous())  # activations (time, batch, 4 * hidden); h, c (time, batch, hidden)
        ctx.save_for_backward(gates, cells, states, w_hh)
        return states

    @staticmethod
    @once_differentiable  # the compiled backward is not itself differentiable
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates, cells, states, w_hh = ctx.saved_tensors
        grad_projected, grad_w_hh = native.loaded().lstm_backward(
            grad_states.contiguous(), gates, cells, states, w_hh.contiguous())  # (time, batch, 4 * hidden), (4 * hidden, hidden)
        return grad_projected, grad_w_hh


class _GRURecurrence(torch.autograd.Function):
    """PyTorch's GRU given z_t = x_t W_ih^T + b_ih + (b_hr, b_hz, 0), zero initial state: the loops of
    csrc/cells.cpp. b_hn stays apart: it sits inside r * (h W_hn^T + b_hn)."""

    @staticmethod
    def forward(ctx, projected: torch.Tensor, w_hh: torch.Tensor, b_hn: torch.Tensor) -> torch.Tensor:
        gates, states, inner = native.loaded().gru_forward(projected.contiguous(), w_hh.t().contiguous(),
                                                            b_hn.contiguous())  # r, z, n (time, batch, 3 * hidden); h, inner
        ctx.save_for_backward(gates, inner, states, w_hh)
        return states

    @staticmethod
    @once_differentiable  # the compiled backward is not itself differentiable
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gates, inner, states, w_hh = ctx.saved_tensors
        return tuple(native.loaded().gru_backward(grad_states.contiguous(), gates, inner, states, w_hh.contiguous()))


_LOOPS = {nn.RNN: _TanhRecurrence, nn.LSTM: _LSTMRecurrence, nn.GRU: _GRURecurrence}


def input_bias(module: nn.RNNBase, layer: int = 0) -> torch.Tensor:
    """The bias added to a layer's input projection: both biases, except the GRU's b_hn (inside r * (...))."""
    bias_ih, bias_hh = getattr(module, f"bias_ih_l{layer}"), getattr(module, f"bias_hh_l{layer}")
    if isinstance(module, nn.GRU):
        gates = 2 * module.hidden_size
        return bias_ih + torch.cat([bias_hh[:gates], torch.zeros_like(bias_hh[gates:])])
    return bias_ih + bias_hh


def _recurrent_weights(module: nn.RNNBase, layer: int) -> tuple[torch.Tensor, ...]:
    weight_hh = getattr(module, f"weight_hh_l{layer}")
    if isinstance(module, nn.GRU):
        return weight_hh, getattr(module, f"bias_hh_l{layer}")[2 * module.hidden_size :]  # W_hh, b_hn
    return (weight_hh,)


def run_layers(module: nn.RNNBase, x: torch.Tensor | None = None, projected: torch.Tensor | None = None) -> torch.Tensor:
    """`module`'s output (batch, time, hidden) for batch-first `x` (batch, time, features), or from the
    first layer's input projection `projected` (time, batch, gates * hidden) already made (the folded
    table of models/folded.py): every layer, one direction, zero initial state; dropout between
    layers as the module applies it."""
    loop = _LOOPS[type(module)]
    inputs = None if x is None else x.transpose(0, 1).contiguous()  # (time, batch, features): no copy when stored time-major
    for layer in range(module.num_layers):
        if layer and module.dropout and module.training:
            assert inputs is not None  # the previous layer's outputs
            inputs = F.dropout(inputs, module.dropout, training=True)
        if layer or projected is None:
            assert inputs is not None, "run_layers needs x, or the first layer's input projection"
            weight_ih = getattr(module, f"weight_ih_l{layer}")
            projected = F.linear(inputs, weight_ih, input_bias(module, layer))  # (time, batch, gates * hidden), every step at once
        inputs = loop.apply(projected, *_recurrent_weights(module, layer))  # (time, batch, hidden)
    assert inputs is not None  # num_layers >= 1
    return inputs.transpose(0, 1)  # (batch, time, hidden), stored time-major
