"""The SimpleRNN loop of models/recurrence.py against PyTorch's own nn.RNN kernel."""

import pytest
import torch
from torch import nn

from seqlab.models import recurrence


@pytest.mark.parametrize("layers,batch,time", [(1, 5, 30), (2, 5, 30), (1, 1, 30), (1, 4, 1)])
def test_outputs_and_every_gradient_equal_nn_rnn(layers, batch, time):
    torch.manual_seed(0)
    module = nn.RNN(12, 8, num_layers=layers, batch_first=True)
    for bias in (module.bias_hh_l0, module.bias_ih_l0):  # nonzero biases, each in its own place
        nn.init.normal_(bias)
    x = torch.randn(batch, time, 12, requires_grad=True)  # (batch, time, features)
    upstream = torch.randn(batch, time, 8)  # a loss that reads every step

    expected, _ = module(x)
    (expected * upstream).sum().backward()
    expected_grads = [x.grad.clone()] + [p.grad.clone() for p in module.parameters()]
    x.grad = None
    module.zero_grad()

    assert recurrence.supports(module, x)
    outputs = recurrence.run_layers(module, x)
    (outputs * upstream).sum().backward()
    grads = [x.grad] + [p.grad for p in module.parameters()]

    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)
    for grad, want in zip(grads, expected_grads):
        torch.testing.assert_close(grad, want, atol=1e-5, rtol=1e-5)


def test_other_modules_and_devices_keep_pytorchs_kernel():
    x = torch.randn(2, 3, 4)
    assert not recurrence.supports(nn.LSTM(4, 4), x)
    assert not recurrence.supports(nn.RNN(4, 4, nonlinearity="relu"), x)
    assert not recurrence.supports(nn.RNN(4, 4, bidirectional=True), x)
    assert not recurrence.supports(nn.RNN(4, 4).double(), x.double())
