"""Predicting from folded tables (models/folded.py, chosen by models/kernels.py) against the modules' own kernels."""

import pytest
import torch
from torch import nn

from seqlab.models import build_model, folded, kernels, native

# The compiled loops are built wherever the tests run (a failed build fails them); SEQLAB_NATIVE=0
# runs the suite on the fallback path, and then the tests of the compiled loops say they were skipped.
needs_native = pytest.mark.skipif(native.switched_off(), reason="SEQLAB_NATIVE=0 switches the compiled loops off")

KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CELLS = ["rnn", pytest.param("lstm", marks=needs_native), pytest.param("gru", marks=needs_native)]


@pytest.mark.parametrize("hidden", [8, 37, 64])  # 37: no multiple of the vector width; 64: whole blocks of vectors
@pytest.mark.parametrize("cell", CELLS)
def test_folded_states_equal_the_modules_own_outputs(cell, hidden):
    torch.manual_seed(0)
    embedding, module = nn.Embedding(50, 12), KINDS[cell](12, hidden, batch_first=True).eval()
    for name, parameter in module.named_parameters():
        if name.startswith("bias"):  # nonzero biases, each in its own place
            nn.init.normal_(parameter)
    ids = torch.randint(0, 50, (kernels.LSTM_MIN_BATCH + 3, 40))  # (batch, time)
    with torch.no_grad():
        expected, _ = module(embedding(ids))
        assert kernels.can_fold(module)
        states = folded.folded_states(module, folded.folded_weights(module, embedding.weight), ids)
    torch.testing.assert_close(states, expected, atol=1e-5, rtol=1e-5)


def test_only_one_float32_layer_on_cpu_folds():
    assert kernels.can_fold(nn.RNN(4, 4))
    if not native.switched_off():
        assert kernels.can_fold(nn.GRU(4, 4)) and kernels.can_fold(nn.LSTM(4, 4))
    assert not kernels.can_fold(nn.LSTM(4, 4, proj_size=2))
    assert not kernels.can_fold(nn.GRU(4, 4, num_layers=2))
    assert not kernels.can_fold(nn.GRU(4, 4, bidirectional=True))
    assert not kernels.can_fold(nn.GRU(4, 4, bias=False))
    assert not kernels.can_fold(nn.RNN(4, 4, nonlinearity="relu"))
    assert not kernels.can_fold(nn.RNN(4, 4).to(torch.bfloat16))


@pytest.mark.parametrize("cell", CELLS)
def test_tables_serve_only_predicting_with_tables_built(cell):
    model = build_model(cell, vocab_size=50, embedding_dim=8, hidden_size=6)
    few, many = torch.zeros(2, 3, dtype=torch.long), torch.zeros(kernels.LSTM_MIN_BATCH, 3, dtype=torch.long)
    module = model.recurrent
    with torch.no_grad():
        assert kernels.plan(module, many, model.eval()) != kernels.TABLE  # none built
    with kernels.predicting(model):
        assert not model.training
        assert kernels.plan(module, many, model) != kernels.TABLE  # gradients on
        with torch.no_grad():
            assert kernels.plan(module, many, model) == kernels.TABLE
            # a few texts keep PyTorch's LSTM kernel (the same probability however a few are batched)
            assert (kernels.plan(module, few, model) == kernels.TABLE) == (cell != "lstm")
            assert kernels.plan(module, torch.zeros(0, 3, dtype=torch.long), model) != kernels.TABLE  # no texts
            with torch.autocast("cpu", torch.bfloat16):
                assert kernels.plan(module, many, model) == kernels.PYTORCH
    with torch.no_grad():
        assert kernels.plan(module, many, model) != kernels.TABLE  # dropped after the block


@pytest.mark.parametrize("cell", CELLS)
def test_last_states_are_each_texts_output_at_its_own_last_token(cell):
    torch.manual_seed(0)
    embedding, module = nn.Embedding(50, 12), KINDS[cell](12, 8, batch_first=True).eval()
    batch, time = kernels.LSTM_MIN_BATCH + 3, 40
    ids = torch.randint(0, 50, (batch, time))  # (batch, time)
    lengths = torch.randint(1, time - 8, (batch,))  # steps after the longest text are not run
    lengths[3] = lengths[5]  # texts ending at the same step
    with torch.no_grad():
        weights = folded.folded_weights(module, embedding.weight)
        everything = folded.folded_states(module, weights, ids)  # (batch, time, hidden)
        last = folded.folded_last_states(module, weights, ids, lengths)  # (batch, hidden)
    torch.testing.assert_close(last, everything[torch.arange(batch), lengths - 1], atol=1e-6, rtol=0)


@needs_native
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_text_gets_the_same_bits_alone_and_in_any_batch(cell):
    torch.manual_seed(0)
    embedding, module = nn.Embedding(50, 12), KINDS[cell](12, 64, batch_first=True).eval()
    ids = torch.randint(0, 50, (23, 30))  # (batch, time): 23 rows, no multiple of a block's rows
    lengths = torch.randint(1, 31, (23,))
    with torch.no_grad():
        weights = folded.folded_weights(module, embedding.weight)
        together = folded.folded_last_states(module, weights, ids, lengths)  # (batch, hidden)
        for row in (0, 6, 22):
            alone = folded.folded_last_states(module, weights, ids[row : row + 1, : lengths[row]], lengths[row : row + 1])
            assert torch.equal(alone[0], together[row])


def test_lengths_outside_the_ids_are_refused():
    embedding, module = nn.Embedding(50, 12), nn.GRU(12, 8, batch_first=True).eval()
    ids = torch.randint(0, 50, (4, 10))
    with torch.no_grad():
        weights = folded.folded_weights(module, embedding.weight)
        for lengths in ([3, 0, 5, 10], [3, 11, 5, 10]):  # an empty text; one longer than the ids
            with pytest.raises(ValueError, match="lengths must be between 1 and the ids' 10 steps"):
                folded.folded_last_states(module, weights, ids, torch.tensor(lengths))


@pytest.mark.parametrize("cell", CELLS)
def test_a_model_made_in_inference_mode_predicts_from_its_tables(cell):
    with torch.inference_mode():  # weights with no version counters: nothing is keyed on them
        torch.manual_seed(0)
        model = build_model(cell, vocab_size=50, embedding_dim=8, hidden_size=6).eval()
        ids, lengths = torch.randint(0, 50, (kernels.LSTM_MIN_BATCH, 7)), torch.full((kernels.LSTM_MIN_BATCH,), 7)
        expected = model(ids, lengths).logits
        kernels.fold(model)
        assert kernels.plan(model.recurrent, ids, model) == kernels.TABLE
        torch.testing.assert_close(model(ids, lengths).logits, expected, atol=1e-5, rtol=0)
        kernels.unfold(model)
        assert kernels.plan(model.recurrent, ids, model) != kernels.TABLE


def test_models_without_recurrent_layers_fold_to_themselves():
    for name, options in (("transformer", {}), ("cnn", {}), ("fasttext", {"buckets": 97})):
        model = build_model(name, vocab_size=50, **options).train()
        with kernels.predicting(model) as predicting:
            assert predicting is model and not model.training
        assert model.training and kernels.fold(model) is model and kernels.unfold(model) is model


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
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_hook_on_the_embedding_sees_every_token(cell, hook, training):
    # Training (distinct words) or predicting with tables built: a hook still gets every token's vector.
    model = build_model(cell, vocab_size=50)
    ids, lengths = torch.randint(0, 50, (4, 9)), torch.full((4,), 9)
    seen = []
    register = getattr(model.embedding, f"register_{hook}_hook")
    handle = register(lambda module, inputs, *output: seen.append(inputs[0].numel()))
    if training:
        model.train()(ids, lengths).logits.sum().backward()
    else:
        with kernels.predicting(model), torch.no_grad():
            model(ids, lengths)
    handle.remove()
    assert seen == [ids.numel()]  # the word vectors were formed, not the distinct words' or the folded table
