"""Predicting from folded tables (models/folded.py) against the modules' own kernels."""

import pytest
import torch
from torch import nn

from seqlab.models import folded, native

# The compiled loops are built wherever the tests run (a failed build fails them); SEQLAB_NATIVE=0
# runs the suite on the fallback path, and then the tests of the compiled loops say they were skipped.
needs_native = pytest.mark.skipif(native.switched_off(), reason="SEQLAB_NATIVE=0 switches the compiled loops off")

MODULES = {"rnn": lambda: nn.RNN(12, 8, batch_first=True), "lstm": lambda: nn.LSTM(12, 8, batch_first=True),
           "gru": lambda: nn.GRU(12, 8, batch_first=True)}
KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.fixture(params=[pytest.param("native", marks=needs_native), "torchscript", "python"])
def compiled(request, monkeypatch):
    """Each of the three ways a loop runs: csrc/cells.cpp compiled; where it could not be built,
    TorchScript; where that is missing too, the loops as written."""
    if request.param != "native":
        monkeypatch.setattr(native, "kernels", lambda: None)
    if request.param == "python":
        monkeypatch.setattr(folded, "_compiled_loops", {folded._lstm_loop: folded._lstm_loop, folded._gru_loop: folded._gru_loop})
    return request.param


@pytest.mark.parametrize("hidden", [8, 37])  # 37: no multiple of the compiled loops' vector width
@pytest.mark.parametrize("cell", list(MODULES))
def test_folded_states_equal_the_modules_own_outputs(cell, hidden, compiled):
    torch.manual_seed(0)
    embedding, module = nn.Embedding(50, 12), KINDS[cell](12, hidden, batch_first=True).eval()
    for name, parameter in module.named_parameters():
        if name.startswith("bias"):  # nonzero biases, each in its own place
            nn.init.normal_(parameter)
    ids = torch.randint(0, 50, (folded.LSTM_MIN_BATCH + 3, 40))  # (batch, time)
    with torch.no_grad():
        expected, _ = module(embedding(ids))
        assert folded.can_fold(module, ids)
        states = folded.folded_states(module, folded.folded_weights(module, embedding.weight), ids)
    torch.testing.assert_close(states, expected, atol=1e-5, rtol=1e-5)


def test_the_loops_compile_with_torchscript():
    # Not a silent fallback: on the PyTorch seqlab pins for its tests the fast path is the one taken.
    for loop in (folded._lstm_loop, folded._gru_loop):
        assert isinstance(folded._compiled(loop), torch.jit.ScriptFunction)


def test_folding_only_when_predicting_with_one_float32_layer_on_cpu():
    few, many = torch.zeros(2, 3, dtype=torch.long), torch.zeros(folded.LSTM_MIN_BATCH, 3, dtype=torch.long)
    rnn = nn.RNN(4, 4).eval()
    assert not folded.can_fold(rnn, few)  # gradients on
    with torch.no_grad():
        assert folded.can_fold(rnn, few)
        assert folded.can_fold(nn.GRU(4, 4).eval(), few)
        assert folded.can_fold(nn.LSTM(4, 4).eval(), many)
        assert not folded.can_fold(nn.LSTM(4, 4).eval(), few)  # a few texts keep oneDNN's kernel
        assert not folded.can_fold(nn.LSTM(4, 4, proj_size=2).eval(), many)
        assert not folded.can_fold(nn.RNN(4, 4), few)  # training mode
        assert not folded.can_fold(nn.GRU(4, 4, num_layers=2).eval(), few)
        assert not folded.can_fold(nn.GRU(4, 4, bidirectional=True).eval(), few)
        assert not folded.can_fold(nn.GRU(4, 4, bias=False).eval(), few)
        assert not folded.can_fold(nn.RNN(4, 4, nonlinearity="relu").eval(), few)
        assert not folded.can_fold(nn.RNN(4, 4).to(torch.bfloat16).eval(), few)
        assert not folded.can_fold(nn.GRU(4, 4).eval(), torch.zeros(0, 3, dtype=torch.long))  # no texts


@pytest.mark.parametrize("cell", list(MODULES))
def test_last_states_are_each_texts_output_at_its_own_last_token(cell, compiled):
    torch.manual_seed(0)
    embedding, module = nn.Embedding(50, 12), MODULES[cell]().eval()
    batch, time = folded.LSTM_MIN_BATCH + 3, 40
    ids = torch.randint(0, 50, (batch, time))  # (batch, time)
    lengths = torch.randint(1, time - 8, (batch,))  # steps after the longest text are not run
    lengths[3] = lengths[5]  # texts ending at the same step
    with torch.no_grad():
        weights = folded.folded_weights(module, embedding.weight)
        everything = folded.folded_states(module, weights, ids)  # (batch, time, hidden)
        last = folded.folded_last_states(module, weights, ids, lengths)  # (batch, hidden)
    torch.testing.assert_close(last, everything[torch.arange(batch), lengths - 1], atol=1e-6, rtol=0)


def test_lengths_outside_the_ids_are_refused():
    embedding, module = nn.Embedding(50, 12), nn.GRU(12, 8, batch_first=True).eval()
    ids = torch.randint(0, 50, (4, 10))
    with torch.no_grad():
        weights = folded.folded_weights(module, embedding.weight)
        for lengths in ([3, 0, 5, 10], [3, 11, 5, 10]):  # an empty text; one longer than the ids
            with pytest.raises(ValueError, match="lengths must be between 1 and the ids' 10 steps"):
                folded.folded_last_states(module, weights, ids, torch.tensor(lengths))


def test_weights_made_in_inference_mode_keep_the_modules_own_kernel():
    with torch.inference_mode():  # no version counters to key a table on
        module = nn.GRU(4, 4).eval()
        assert not folded.can_fold(module, torch.zeros(2, 3, dtype=torch.long))


@needs_native
def test_the_compiled_loops_refuse_token_ids_outside_the_table():
    embedding, module = nn.Embedding(50, 12), nn.LSTM(12, 8, batch_first=True).eval()
    with torch.no_grad():
        weights = folded.folded_weights(module, embedding.weight)
        with pytest.raises(RuntimeError, match="token id 50 outside the table"):
            folded.folded_last_states(module, weights, torch.tensor([[1, 2, 50]]), torch.tensor([3]))


@pytest.mark.parametrize("cell", list(KINDS))
def test_training_inputs_from_distinct_words_equal_the_word_vectors_projected(cell):
    torch.manual_seed(0)
    embedding, module = nn.Embedding(50, 12), KINDS[cell](12, 8)
    nn.init.normal_(module.bias_ih_l0), nn.init.normal_(module.bias_hh_l0)
    ids = torch.randint(0, 50, (6, 30))  # (batch, time): repeated words
    upstream = torch.randn(30, 6, module.weight_ih_l0.shape[0])
    bias = module.bias_ih_l0 + module.bias_hh_l0
    if cell == "gru":  # b_hn is not part of the GRU's input projection
        bias = bias - torch.cat([torch.zeros(16), module.bias_hh_l0[16:]])
    expected = nn.functional.linear(embedding(ids.t()), module.weight_ih_l0, bias)
    (expected * upstream).sum().backward()
    parameters = (embedding.weight, module.weight_ih_l0, module.bias_ih_l0, module.bias_hh_l0)
    want = [p.grad.clone() for p in parameters]
    embedding.zero_grad(), module.zero_grad()
    projected = folded.folded_inputs(module, embedding, ids)  # (time, batch, gates * hidden)
    (projected * upstream).sum().backward()
    torch.testing.assert_close(projected, expected, atol=1e-6, rtol=1e-6)
    for parameter, grad in zip(parameters, want):
        torch.testing.assert_close(parameter.grad, grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hook", ["forward", "forward_pre"])
def test_a_hook_on_the_embedding_sees_every_token_in_training(hook):
    from seqlab.models import build_model

    model = build_model("lstm", vocab_size=50).train()
    ids, lengths = torch.randint(0, 50, (4, 9)), torch.full((4,), 9)
    seen = []
    register = getattr(model.embedding, f"register_{hook}_hook")
    handle = register(lambda module, inputs, *output: seen.append(inputs[0].numel()))
    model(ids, lengths).logits.sum().backward()
    handle.remove()
    assert seen == [ids.numel()]  # the word vectors were formed, not the distinct words' table
