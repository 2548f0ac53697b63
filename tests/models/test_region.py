"""The seq-cnn (one-hot region convolution): its sparse route against the autograd route, the
route choice, sparse optimizers, and learning on the synthetic corpus."""

import numpy as np
import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.evaluation.predicting import evaluate
from seqlab.models import build_model
from seqlab.models.region import RegionMaxPool
from seqlab.training.config import TrainConfig
from seqlab.training.fit import Trainer, split_validation
from seqlab.training.optimizers import build_optimizer


def _model(**options):
    torch.manual_seed(0)
    # A wider start than the default, so that most filters have a region above 0 and pass a gradient.
    return build_model("seq-cnn", **{"vocab_size": 60, "hidden_size": 7, "init_range": 0.5, **options})


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("sparse", [False, True])
def test_sparse_route_equals_the_autograd_route(width, sparse, padded_ids):
    """Oracle: features, the table's gradient and the bias's gradient agree within 1e-5."""
    model = _model(region_size=width, sparse_gradients=sparse)
    ids, lengths = padded_ids(60, [11, 1, 2, 7, 3, 11])
    weights = torch.randn(6, 7)  # (batch, filters): a different gradient for every feature
    fast = RegionMaxPool.apply(ids, lengths, model.embedding.weight, model.bias, width, sparse)  # (batch, filters)
    plain = model.features(ids, lengths)  # (batch, filters)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)
    (fast * weights).sum().backward()
    fast_table, fast_bias = model.embedding.weight.grad, model.bias.grad.clone()
    assert fast_table.is_sparse == sparse
    fast_table = fast_table.to_dense().clone()
    model.zero_grad(set_to_none=True)
    (plain * weights).sum().backward()
    torch.testing.assert_close(fast_table, model.embedding.weight.grad.to_dense(), rtol=0, atol=1e-5)
    torch.testing.assert_close(fast_bias, model.bias.grad, rtol=0, atol=1e-5)
    assert fast_table.abs().sum() > 0 and fast_bias.abs().sum() > 0


def _with_context(width: int, context_width: int, **options):
    model = _model(region_size=width, context_dim=4, context_width=context_width, **options)
    with torch.no_grad():
        model.context_embedding.uniform_(-0.5, 0.5)
        model.context_bias.uniform_(-0.1, 0.1)
    return model


@pytest.mark.parametrize("width, context_width", [(1, 1), (3, 5), (2, 3), (4, 2)])
@pytest.mark.parametrize("sparse", [False, True])
def test_sparse_route_with_a_region_context_equals_the_autograd_route(width, context_width, sparse, padded_ids,
                                                                     monkeypatch):
    """Oracle, with a fixed region embedding beside the one-hot words: features and the gradients of the
    table, the bias and the context's mix agree within 1e-5, in one slice and text by text."""
    model = _with_context(width, context_width, sparse_gradients=sparse)
    ids, lengths = padded_ids(60, [11, 1, 2, 7, 3, 11])
    weights = torch.randn(6, 7)  # (batch, filters)
    plain = model.features(ids, lengths)  # (batch, filters)
    (plain * weights).sum().backward()
    learned = {"embedding.weight": model.embedding.weight, "bias": model.bias, "context": model.context}
    expected = {name: parameter.grad.to_dense().clone() for name, parameter in learned.items()}
    for slices in (1 << 25, 1):
        monkeypatch.setattr("seqlab.models.region.LOOKUP_VALUES", slices)
        model.zero_grad(set_to_none=True)
        fast = RegionMaxPool.apply(ids, lengths, model.embedding.weight, model.bias, width, sparse,
                                   model.region_context(ids, lengths), model.context)
        torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)
        (fast * weights).sum().backward()
        for name, parameter in learned.items():
            torch.testing.assert_close(parameter.grad.to_dense(), expected[name], rtol=0, atol=1e-5)
    assert expected["context"].abs().sum() > 0


def test_the_region_context_is_the_bag_of_words_centred_on_each_region():
    """Region s of a width-3 seq-cnn reads words s - 2 .. s; a 5-word context centred on it, s - 3 .. s + 1."""
    model = _with_context(3, 5)
    ids, lengths = torch.tensor([[5, 6, 7, 8, 9, 10, 0]]), torch.tensor([6])
    context = model.region_context(ids, lengths)[0]  # (regions, context_dim)
    assert context.shape == (7 + 2, 4)  # regions of the padded batch
    table, bias = model.context_embedding, model.context_bias
    for region in range(9):
        words = [ids[0, p] for p in range(region - 3, region + 2) if 0 <= p < 6]
        torch.testing.assert_close(context[region], torch.relu(bias + sum(table[w] for w in words)))


def test_sparse_route_in_slices_equals_one_slice(monkeypatch, padded_ids):
    model = _model()
    ids, lengths = padded_ids(60, [9, 4, 1, 6, 2])
    whole = RegionMaxPool.apply(ids, lengths, model.embedding.weight, model.bias, 3, False)
    monkeypatch.setattr("seqlab.models.region.LOOKUP_VALUES", 1)  # one text at a time
    sliced = RegionMaxPool.apply(ids, lengths, model.embedding.weight, model.bias, 3, False)
    torch.testing.assert_close(whole, sliced, rtol=0, atol=0)


def test_the_route_follows_what_the_caller_needs():
    model = _model()
    model.train()
    assert model._uses_region_max_pool()
    model.eval()
    with torch.no_grad():
        assert model._uses_region_max_pool()
    assert not model._uses_region_max_pool()  # gradients in evaluation mode: explanations hook the embedding


def test_a_one_word_text_reaches_every_slot():
    """Both ends are padded by region_size - 1, so a single word has a region with it in each slot."""
    model = _model(region_size=3)
    with torch.no_grad():
        table = model.embedding.weight.view(60, 3, 7)  # (vocab, slot, filters)
        alone = model.features(torch.tensor([[5]]), torch.tensor([1]))[0]  # (filters,)
        expected = torch.relu(table[5] + model.bias).amax(0)  # (filters,): the best of the three slots
    torch.testing.assert_close(alone, expected)


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_sparse_optimizers_match_dense_ones(optimizer, padded_ids):
    dense = _model(output_dropout=0.0)
    sparse = _model(output_dropout=0.0, sparse_gradients=True)
    sparse.load_state_dict(dense.state_dict())
    ids, lengths = padded_ids(60, [9, 4, 6])
    config = TrainConfig(optimizer=optimizer, learning_rate=0.1)
    for model in (dense, sparse):
        model.train()
        built = build_optimizer(model, list(model.parameters()), config)
        for _ in range(2):
            built.zero_grad()
            model(ids, lengths).logits.sum().backward()
            built.step()
    for (name, a), b in zip(dense.state_dict().items(), sparse.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)


def test_sparse_gradients_touch_only_the_rows_of_the_batch(padded_ids):
    model = _model(sparse_gradients=True).train()
    ids, lengths = padded_ids(60, [5, 3])
    model(ids, lengths).logits.sum().backward()
    touched = set(model.embedding.weight.grad.coalesce().indices()[0].tolist())
    assert touched and touched <= set(ids[ids > 0].tolist())


def test_sparse_gradients_with_adam_are_refused():
    model = _model(sparse_gradients=True)
    with pytest.raises(ConfigError, match="sgd.*adagrad"):
        build_optimizer(model, list(model.parameters()), TrainConfig(optimizer="adam"))


@pytest.mark.parametrize("options,message", [({"region_size": 0}, "region_size"), ({"hidden_size": 0}, "hidden_size"),
                                             ({"pooling": "mean"}, "max"), ({"init_range": 0}, "init_range")])
def test_bad_settings_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        build_model("seq-cnn", **options)


def test_learns_the_synthetic_corpus(synthetic):
    training = TrainConfig(epochs=4, batch_size=16, optimizer="adagrad", learning_rate=0.05, seed=0)
    train, validation = split_validation(synthetic.train, training.validation_split, training.seed)
    torch.manual_seed(0)
    model = build_model("seq-cnn", vocab_size=synthetic.encoder.vocab_size, hidden_size=32, sparse_gradients=True)
    history = Trainer(model, train, validation, training).fit()
    assert history.loss[-1] < history.loss[0]
    assert evaluate(model, synthetic.test)["accuracy"] >= 0.75  # chance: 0.5; short texts stay ambiguous
    assert np.isfinite(history.loss).all()


def test_a_trained_run_predicts_explains_serves_and_exports(synthetic, synthetic_corpus, tmp_path):
    """The run directory of a seq-cnn works with every door a run has."""
    from fastapi.testclient import TestClient

    import seqlab
    from seqlab.explain import explain
    from seqlab.export import export_onnx
    from seqlab.predict import load
    from seqlab.serve.app import create_app, load_predictors

    training = seqlab.TrainConfig(epochs=2, batch_size=32, optimizer="adagrad", learning_rate=0.05, validation_split=0.1)
    seqlab.train_model("seq-cnn", synthetic, training, out=tmp_path / "run", hidden_size=16, sparse_gradients=True)
    predictor = load(tmp_path / "run")
    texts = ["A wonderful, moving film.", "Dull. " * 40, "ok"]
    probabilities = predictor.predict_proba(texts)
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(1), 1)
    test = synthetic_corpus.test
    assert predictor.evaluate(test.texts, test.labels)["accuracy"] > 0.6
    occlusion = explain(predictor, "a wonderful moving film", method="occlusion")
    gradients = explain(predictor, "a wonderful moving film", method="integrated_gradients")
    assert len(occlusion.words) == len(gradients.words) == 4
    assert np.isfinite([word.score for word in gradients.words]).all()
    with TestClient(create_app(load_predictors([str(tmp_path / "run")]))) as client:
        response = client.post("/v1/predict", json={"texts": texts})
    assert response.status_code == 200 and response.json()["model"] == "run"
    result = export_onnx(tmp_path / "run")
    assert result.max_difference < 1e-4
    assert np.abs(probabilities - load(tmp_path / "run", backend="onnx").predict_proba(texts)).max() < 1e-4
