"""The loops of models/recurrence.py (the SimpleRNN's; the compiled LSTM and GRU) against PyTorch's own kernels,
and which of them models/kernels.py picks."""

import pytest
import torch
from torch import nn

from seqlab.models import kernels, native, recurrence

# The compiled loops are built wherever the tests run (a failed build fails them); SEQLAB_NATIVE=0
# runs the suite on the fallback path, and then the tests of the compiled loops say they were skipped.
needs_native = pytest.mark.skipif(native.switched_off(), reason="SEQLAB_NATIVE=0 switches the compiled loops off")


@pytest.mark.parametrize("cell,layers,batch,time,hidden,scale", [
    ("rnn", 1, 5, 30, 8, 1), ("rnn", 2, 5, 30, 8, 1), ("rnn", 1, 1, 30, 8, 1), ("rnn", 1, 4, 1, 8, 1),
    *[pytest.param(*case, marks=needs_native) for case in [
        ("lstm", 1, 5, 30, 8, 1), ("lstm", 2, 5, 30, 8, 1), ("lstm", 1, 1, 30, 8, 1), ("lstm", 1, 4, 1, 8, 1),
        ("lstm", 1, 3, 20, 37, 1),  # a hidden size that is no multiple of the vector width (16 or 8 floats)
        ("lstm", 1, 3, 20, 16, 20),  # saturated gates: biases in the tens
        ("lstm", 1, 13, 20, 64, 1),  # whole blocks of rows and vectors, and rows left over
        ("gru", 1, 5, 30, 8, 1), ("gru", 2, 5, 30, 8, 1), ("gru", 1, 1, 30, 8, 1), ("gru", 1, 4, 1, 8, 1),
        ("gru", 1, 3, 20, 37, 1), ("gru", 1, 3, 20, 16, 20), ("gru", 1, 13, 20, 64, 1),
    ]],
])
def test_outputs_and_every_gradient_equal_pytorchs(cell, layers, batch, time, hidden, scale):
    torch.manual_seed(0)
    module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](12, hidden, num_layers=layers, batch_first=True)
    for bias in (module.bias_hh_l0, module.bias_ih_l0):  # nonzero biases, each in its own place
        nn.init.normal_(bias, std=scale)
    x = torch.randn(batch, time, 12, requires_grad=True)  # (batch, time, features)
    upstream = torch.randn(batch, time, hidden)  # a loss that reads every step

    expected, _ = module(x)
    (expected * upstream).sum().backward()
    expected_grads = [x.grad.clone()] + [p.grad.clone() for p in module.parameters()]
    x.grad = None
    module.zero_grad()

    assert kernels.plan(module, x) == kernels.LOOP
    outputs = recurrence.run_layers(module, x)
    (outputs * upstream).sum().backward()
    grads = [x.grad] + [p.grad for p in module.parameters()]

    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)
    for grad, want in zip(grads, expected_grads):
        torch.testing.assert_close(grad, want, atol=1e-5, rtol=1e-4)  # sums over every step: relative


def test_other_modules_and_devices_keep_pytorchs_kernel():
    x = torch.randn(2, 3, 4)
    for module in (nn.GRU(4, 4, bias=False), nn.LSTM(4, 4, proj_size=2), nn.LSTM(4, 4, bidirectional=True),
                   nn.RNN(4, 4, nonlinearity="relu"), nn.RNN(4, 4, bidirectional=True)):
        assert kernels.plan(module, x) == kernels.PYTORCH
    assert kernels.plan(nn.RNN(4, 4).double(), x.double()) == kernels.PYTORCH
    with torch.no_grad():
        # predicting: PyTorch's LSTM and GRU where no table serves; the SimpleRNN's loop needs no gradients
        assert kernels.plan(nn.LSTM(4, 4), x) == kernels.PYTORCH and kernels.plan(nn.GRU(4, 4), x) == kernels.PYTORCH
        assert kernels.plan(nn.RNN(4, 4), x) == kernels.LOOP
    with torch.autocast("cpu", torch.bfloat16):
        assert kernels.plan(nn.RNN(4, 4), x) == kernels.PYTORCH


@needs_native
@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_nan_comes_out_as_from_pytorchs_kernels(cell):
    # A diverging run must show NaN: the compiled exp clamps its input, the loops put NaN back.
    module = cell(4, 8)
    x = torch.randn(5, 2, 4)
    x[2, 1, 0] = float("nan")
    expected, _ = module(x)
    outputs = recurrence.run_layers(module, x.transpose(0, 1)).transpose(0, 1)  # (time, batch, hidden)
    assert torch.equal(outputs.isnan(), expected.isnan()) and outputs[2:, 1].isnan().all()
    torch.testing.assert_close(outputs.nan_to_num(), expected.nan_to_num(), atol=1e-5, rtol=1e-5)


@needs_native
def test_the_lstm_and_gru_keep_pytorchs_kernels_where_the_loops_could_not_be_built(monkeypatch):
    x = torch.randn(2, 3, 4)
    assert kernels.plan(nn.LSTM(4, 4), x) == kernels.LOOP and kernels.plan(nn.GRU(4, 4), x) == kernels.LOOP
    monkeypatch.setattr(native, "kernels", lambda: None)
    assert kernels.plan(nn.LSTM(4, 4), x) == kernels.PYTORCH and kernels.plan(nn.GRU(4, 4), x) == kernels.PYTORCH
    assert kernels.plan(nn.RNN(4, 4), x) == kernels.LOOP  # PyTorch operations only
    assert not kernels.can_fold(nn.GRU(4, 4)) and kernels.can_fold(nn.RNN(4, 4))


@needs_native
@pytest.mark.parametrize("batch,time", [(5, 30), (1, 1), (1, 30)])
def test_the_simple_rnns_compiled_loop_gives_the_bits_of_its_python_loop(monkeypatch, batch, time):
    # Its training is chaotic at the lecture's settings: a changed rounding would move its accuracy.
    torch.manual_seed(0)
    module = nn.RNN(12, 16)
    x = torch.randn(batch, time, 12, requires_grad=True)  # (batch, time, features)
    upstream = torch.randn(batch, time, 16)

    def outputs_and_gradients():
        x.grad = None
        module.zero_grad()
        outputs = recurrence.run_layers(module, x)
        (outputs * upstream).sum().backward()
        return [outputs.detach(), x.grad] + [p.grad for p in module.parameters()]

    compiled = outputs_and_gradients()
    monkeypatch.setattr(native, "kernels", lambda: None)
    looped = outputs_and_gradients()
    for mine, python in zip(compiled, looped):
        assert torch.equal(mine, python)
