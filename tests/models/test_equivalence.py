"""Oracle tests: the fast path (fused kernels over length-bucketed batches, tokens first) against
the straightforward computation (one cell step at a time over each review alone)."""

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.models import build_model, kernels, native
from seqlab.training.batches import collate
from seqlab.training.fit import TrainConfig
from seqlab.training.optimizers import adam

# Folded tables for the LSTM and GRU feed the compiled loops: SEQLAB_NATIVE=0 has none to check.
needs_native = pytest.mark.skipif(native.switched_off(), reason="SEQLAB_NATIVE=0 switches the compiled loops off")

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def reference_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """The lecture's model computed by hand: embedding, a Python loop of cell steps, dense."""
    recurrent = model.recurrent
    cell = CELLS[model.config.cell](recurrent.input_size, recurrent.hidden_size)
    # The model's own parameters, so gradients reach them through the reference too.
    weights = {"weight_ih": recurrent.weight_ih_l0, "weight_hh": recurrent.weight_hh_l0,
               "bias_ih": recurrent.bias_ih_l0, "bias_hh": recurrent.bias_hh_l0}
    state = None
    for vector in model.embedding(ids):  # (embedding,) per step
        state = torch.func.functional_call(cell, weights, (vector.unsqueeze(0), state))
    hidden = state[0] if isinstance(state, tuple) else state  # (1, hidden)
    return model.head(hidden)  # (1, 1)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_bucketed_fused_outputs_and_gradients_equal_the_step_by_step_reference(name, synthetic):
    torch.manual_seed(0)
    model = build_model(name, vocab_size=synthetic.encoder.vocab_size)
    split = synthetic.test
    indices = np.argsort(split.lengths)[::37][:8]  # reviews of very different lengths in one batch
    batch = collate(split, indices)
    fast = model(batch.ids, batch.lengths).logits  # (8, 1)
    fast.sum().backward()
    fast_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    reference = torch.cat([reference_logits(model, torch.from_numpy(split.encoded.sequence(i).astype(np.int64)))
                           for i in indices])
    reference.sum().backward()
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5)
    for parameter_name, parameter in model.named_parameters():
        torch.testing.assert_close(fast_grads[parameter_name], parameter.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,options", [("rnn", {}), ("lstm", {}), ("gru", {}), ("bilstm", {}),
                                          ("bigru-attention", {}), ("bigru", {"layers": 2, "pooling": "max"}),
                                          ("lstm", {"layers": 2}), ("rnn", {"pooling": "mean"})])
@needs_native
def test_predicting_from_folded_tables_equals_the_reference(name, options, synthetic):
    torch.manual_seed(0)
    model = build_model(name, vocab_size=synthetic.encoder.vocab_size, **options).eval()
    split = synthetic.test
    batch = collate(split, np.argsort(split.lengths)[::13][:kernels.LSTM_MIN_BATCH])  # enough texts to fold an LSTM
    assert len(batch.ids) >= kernels.LSTM_MIN_BATCH
    reference = model(batch.ids, batch.lengths)  # gradients on: the modules' own kernels
    with kernels.predicting(model), torch.inference_mode():
        predicted = model(batch.ids, batch.lengths)
        # the folded path taken where it applies: first layers of one layer each (a stacked nn.LSTM is one module)
        folds = name.startswith("bi") or options.get("layers", 1) == 1
        assert (kernels.plan(model.first_layers()[0], batch.ids, model) == kernels.TABLE) == folds
        torch.testing.assert_close(predicted.logits, reference.logits, rtol=0, atol=1e-5)
        if reference.attention is not None:
            torch.testing.assert_close(predicted.attention, reference.attention, rtol=0, atol=1e-5)
    with torch.no_grad():  # weights change: the next predicting block has tables of the new ones
        for parameter in model.parameters():
            parameter.add_(0.01)
    with kernels.predicting(model), torch.inference_mode():
        changed = model(batch.ids, batch.lengths).logits
    torch.testing.assert_close(changed, model(batch.ids, batch.lengths).logits.detach(), rtol=0, atol=1e-5)


def _same_as_the_modules_own(model, batch) -> None:
    """Predicting inside a `predicting` block and outside it both equal the modules' own kernels
    (gradients on) on the weights of now."""
    reference = model(batch.ids, batch.lengths).logits.detach()
    with kernels.predicting(model), torch.inference_mode():
        assert kernels.plan(model.first_layers()[0], batch.ids, model) == kernels.TABLE
        torch.testing.assert_close(model(batch.ids, batch.lengths).logits, reference, rtol=0, atol=1e-5)
    with torch.inference_mode():  # no tables built: none is used, however recent the last block
        assert kernels.plan(model.first_layers()[0], batch.ids, model) != kernels.TABLE
        torch.testing.assert_close(model(batch.ids, batch.lengths).logits, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["rnn", "lstm", "bigru"])
@needs_native
def test_predictions_after_training_steps_use_the_new_weights(name, synthetic):
    """Tables made while predicting (validation) must not outlive the optimizer's steps that follow
    (the fused Adam kernel bumps no version counter)."""
    torch.manual_seed(0)
    model = build_model(name, vocab_size=synthetic.encoder.vocab_size)
    split = synthetic.test
    batch = collate(split, np.argsort(split.lengths)[::13][:kernels.LSTM_MIN_BATCH])
    optimizer = adam(list(model.parameters()), TrainConfig(learning_rate=0.01))
    assert optimizer.defaults["fused"]  # the kernel that writes weights behind autograd's back
    for _ in range(2):
        with kernels.predicting(model), torch.inference_mode():
            before = model(batch.ids, batch.lengths).logits  # tables made from the weights of now
        assert model.training  # the mode before the block
        model(batch.ids, batch.lengths).logits.sum().backward()
        optimizer.step()
        with kernels.predicting(model), torch.inference_mode():
            assert not torch.allclose(model(batch.ids, batch.lengths).logits, before, rtol=0, atol=1e-4)
        _same_as_the_modules_own(model, batch)
    model.eval()  # and in eval mode throughout
    model(batch.ids, batch.lengths).logits.sum().backward()
    optimizer.step()
    _same_as_the_modules_own(model, batch)
    assert not model.training


@needs_native
def test_a_folded_model_keeps_its_tables_through_a_predicting_block(synthetic):
    model = kernels.fold(build_model("gru", vocab_size=synthetic.encoder.vocab_size).eval())
    batch = collate(synthetic.test, np.arange(4))
    with kernels.predicting(model):
        pass
    with torch.inference_mode():
        assert kernels.plan(model.recurrent, batch.ids, model) == kernels.TABLE
    kernels.unfold(model)
    with torch.inference_mode():
        assert kernels.plan(model.recurrent, batch.ids, model) != kernels.TABLE


def test_dropout_left_on_while_predicting_keeps_the_modules_own_kernels(synthetic):
    # Sampling predictions with dropout on (the rest of the model in eval mode) must keep drawing masks.
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dropout=0.5).eval()
    kernels.fold(model)
    model.embedding_dropout.train()
    batch = collate(synthetic.test, np.arange(kernels.LSTM_MIN_BATCH))
    with torch.inference_mode():
        assert kernels.plan(model.recurrent, batch.ids, model) != kernels.TABLE
        first, second = (model(batch.ids, batch.lengths).logits for _ in range(2))
    assert not torch.equal(first, second)
