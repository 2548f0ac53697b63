"""The SimpleRNN's loop written out for CPUs, as one autograd Function per layer.

PyTorch's fused CPU kernel (oneDNN) spends most of a SimpleRNN's time on bookkeeping around
tiny matrix products: when this loop was first written, predicting 512 reviews of 200 tokens
took 86 ms there and 24 ms here, a training step 68 ms there and 60 ms here. The input
projection of every time step is one large product done by autograd (``linear`` over all
tokens at once); only the recurrent product stays in the loop, two in-place operations per
step forward and two backward, written by hand, and dW_hh computed as one product after the
loop. Inputs arrive time-major in memory (the model gathers its word vectors that way), so no
large tensor is transposed: that, and working in place, took a 64-review share of 200 steps
from 16 to 11 ms forward and backward. (The same written out for training the LSTM and the GRU
was slower than PyTorch's kernels, which stay in use for them: docs/performance.md. Predicting
is another matter: models/folded.py.)

The arithmetic is PyTorch's own (both biases), on the nn.RNN module's weights, so saved
models are unchanged; tests/models/test_recurrence.py checks outputs and every gradient
against nn.RNN. Tensors are time-major inside: (time, batch, features).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _TanhRecurrence(torch.autograd.Function):
    """h_t = tanh(z_t + h_{t-1} W_hh^T), h_{-1} = 0, z_t = x_t W_ih^T + b_ih + b_hh given.

    Each step updates its own slice of one (time, batch, hidden) buffer in place: a step's slice
    is one contiguous block, and an out= product would first copy its bias operand into the output."""

    @staticmethod
    def forward(ctx, projected: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        states = projected.clone(memory_format=torch.contiguous_format)  # (time, batch, hidden): z, then h
        steps = states.unbind(0)  # (batch, hidden) each
        w_t = w_hh.t()
        steps[0].tanh_()
        for step in range(1, len(steps)):
            steps[step].addmm_(steps[step - 1], w_t).tanh_()
        ctx.save_for_backward(states, w_hh)
        return states

    @staticmethod
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, w_hh = ctx.saved_tensors
        hidden = states.shape[-1]
        through_tanh = torch.addcmul(states.new_ones(()), states, states, value=-1)  # (time, batch, hidden): 1 - h^2
        grad_projected = grad_states.clone(memory_format=torch.contiguous_format)  # dLoss/dh, then dLoss/dz
        steps, slopes = grad_projected.unbind(0), through_tanh.unbind(0)
        steps[-1].mul_(slopes[-1])
        for step in range(len(steps) - 2, -1, -1):
            # dLoss/dh_t = its own gradient + dLoss/dz_{t+1} W_hh, then through tanh: one addmm, one mul
            steps[step].addmm_(steps[step + 1], w_hh).mul_(slopes[step])
        grad_w_hh = grad_projected[1:].reshape(-1, hidden).t() @ states[:-1].reshape(-1, hidden)  # (hidden, hidden)
        return grad_projected, grad_w_hh


def supports(module: nn.RNNBase, x: torch.Tensor) -> bool:
    """Whether `module` on `x` takes the loop written here: a one-directional tanh nn.RNN with
    biases, float32 on CPU outside autocast. Elsewhere (a GPU: cuDNN) PyTorch's own kernel is the better one."""
    return (type(module) is nn.RNN and module.nonlinearity == "tanh" and module.bias and not module.bidirectional
            and on_cpu_in_float32(x))


def on_cpu_in_float32(x: torch.Tensor) -> bool:
    """`x` is float32 on a CPU, outside autocast: where the loops written here and in folded.py
    beat PyTorch's kernels."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


def run_layers(module: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """`module`'s output for batch-first `x` (batch, time, features): every layer, one direction,
    zero initial state; dropout between layers as the module applies it."""
    inputs = x.transpose(0, 1).contiguous()  # (time, batch, features): no copy when x is stored time-major
    for layer in range(module.num_layers):
        if layer and module.dropout and module.training:
            inputs = F.dropout(inputs, module.dropout, training=True)
        weight_ih = getattr(module, f"weight_ih_l{layer}")
        bias = getattr(module, f"bias_ih_l{layer}") + getattr(module, f"bias_hh_l{layer}")
        projected = F.linear(inputs, weight_ih, bias)  # (time, batch, hidden), every step at once
        inputs = _TanhRecurrence.apply(projected, getattr(module, f"weight_hh_l{layer}"))
    return inputs.transpose(0, 1)  # (batch, time, hidden), stored time-major
