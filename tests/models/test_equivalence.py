"""Oracle tests: the fast path (fused kernels over length-bucketed batches, tokens first) against
the straightforward computation (one cell step at a time over each review alone)."""

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.models import build_model, folded
from seqlab.training.batches import collate
from seqlab.training.fit import TrainConfig, adam

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
def test_predicting_from_folded_tables_equals_the_reference(name, options, synthetic):
    torch.manual_seed(0)
    model = build_model(name, vocab_size=synthetic.encoder.vocab_size, **options).eval()
    split = synthetic.test
    batch = collate(split, np.argsort(split.lengths)[::13][:folded.LSTM_MIN_BATCH])  # enough texts to fold an LSTM
    assert len(batch.ids) >= folded.LSTM_MIN_BATCH
    reference = model(batch.ids, batch.lengths)  # gradients on: the modules' own kernels
    with torch.inference_mode():
        predicted = model(batch.ids, batch.lengths)
        # the folded path taken where it applies: first layers of one layer each (a stacked nn.LSTM is one module)
        assert bool(model._tables) == (name.startswith("bi") or options.get("layers", 1) == 1)
        torch.testing.assert_close(predicted.logits, reference.logits, rtol=0, atol=1e-5)
        if reference.attention is not None:
            torch.testing.assert_close(predicted.attention, reference.attention, rtol=0, atol=1e-5)
        with torch.no_grad():  # weights change: the tables follow
            for parameter in model.parameters():
                parameter.add_(0.01)
        changed = model(batch.ids, batch.lengths).logits
    with torch.enable_grad():
        torch.testing.assert_close(changed, model(batch.ids, batch.lengths).logits.detach(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["rnn", "lstm", "bigru"])
def test_predictions_after_training_steps_use_the_new_weights(name, synthetic):
    """Tables made while predicting (validation) must not outlive the optimizer's steps that follow
    (the fused Adam kernel bumps no version counter; training mode drops the tables too)."""
    torch.manual_seed(0)
    model = build_model(name, vocab_size=synthetic.encoder.vocab_size)
    split = synthetic.test
    batch = collate(split, np.argsort(split.lengths)[::13][:folded.LSTM_MIN_BATCH])
    optimizer = adam(list(model.parameters()), TrainConfig(learning_rate=0.01))
    for _ in range(2):
        model.eval()
        with torch.inference_mode():
            model(batch.ids, batch.lengths)  # tables made from the weights of now
        model.train()
        model(batch.ids, batch.lengths).logits.sum().backward()
        optimizer.step()
    model.eval()
    with torch.inference_mode():
        predicted = model(batch.ids, batch.lengths).logits
    torch.testing.assert_close(predicted, model(batch.ids, batch.lengths).logits.detach(), rtol=0, atol=1e-5)
    with torch.inference_mode():  # and in eval mode throughout: the version counters tell
        model(batch.ids, batch.lengths)
    model(batch.ids, batch.lengths).logits.sum().backward()
    optimizer.step()
    with torch.inference_mode():
        predicted = model(batch.ids, batch.lengths).logits
    torch.testing.assert_close(predicted, model(batch.ids, batch.lengths).logits.detach(), rtol=0, atol=1e-5)


def test_dropout_left_on_while_predicting_keeps_the_modules_own_kernels(synthetic):
    # Sampling predictions with dropout on (the rest of the model in eval mode) must keep drawing masks.
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dropout=0.5).eval()
    model.embedding_dropout.train()
    batch = collate(synthetic.test, np.arange(folded.LSTM_MIN_BATCH))
    with torch.inference_mode():
        first, second = (model(batch.ids, batch.lengths).logits for _ in range(2))
    assert not model._tables and not torch.equal(first, second)
