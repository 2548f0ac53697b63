"""The fasttext model's bag route (EmbeddingBag over flat ids) against its padded route, and sparse SGD."""

import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.models import build_model, ngrams
from seqlab.training.config import TrainConfig
from seqlab.training.fit import Trainer
from seqlab.training.optimizers import build_optimizer


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("ngrams", [1, 2, 3])
def test_bag_route_equals_the_padded_route(ngrams, binary, padded_ids):
    model = build_model("fasttext", vocab_size=60, embedding_dim=12, buckets=97, ngrams=ngrams, binary=binary).eval()
    ids, lengths = padded_ids(60, [11, 1, 2, 7, 3, 11])
    ids[0, 6:] = ids[0, :5]  # words and n-grams repeated within a text (and a pair of texts sharing rows)
    ids[5] = ids[0]
    bags, padded = model._bag_mean(ids, lengths), model._padded_mean(ids, lengths)  # (batch, embedding)
    assert torch.allclose(bags, padded, atol=1e-5)
    bags.sum().backward()
    bag_gradient = model.ngram_embedding.weight.grad.clone() if ngrams > 1 else model.embedding.weight.grad.clone()
    model.zero_grad()
    padded.sum().backward()
    padded_gradient = model.ngram_embedding.weight.grad if ngrams > 1 else model.embedding.weight.grad
    assert torch.allclose(bag_gradient, padded_gradient, atol=1e-5)


def test_sparse_gradients_touch_only_the_rows_of_the_batch(padded_ids):
    model = build_model("fasttext", vocab_size=60, embedding_dim=8, buckets=97, sparse_gradients=True)
    ids, lengths = padded_ids(60, [5, 3])
    model(ids, lengths).logits.sum().backward()
    gradient = model.embedding.weight.grad
    assert gradient.is_sparse
    touched = set(gradient.coalesce().indices()[0].tolist())
    assert touched == set(ids[ids > 0].tolist())


def test_sparse_sgd_matches_dense_sgd(padded_ids):
    torch.manual_seed(0)
    dense = build_model("fasttext", vocab_size=60, embedding_dim=8, buckets=97)
    sparse = build_model("fasttext", config=dense.config.__class__(**{**vars(dense.config), "sparse_gradients": True}))
    sparse.load_state_dict(dense.state_dict())
    ids, lengths = padded_ids(60, [9, 4, 6])
    config = TrainConfig(optimizer="sgd", learning_rate=0.5)
    for model in (dense, sparse):
        optimizer = build_optimizer(model, list(model.parameters()), config)
        model(ids, lengths).logits.sum().backward()
        optimizer.step()
    for (name, a), b in zip(dense.state_dict().items(), sparse.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_sparse_gradients_need_sgd_and_no_dropout(synthetic):
    model = build_model("fasttext", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, sparse_gradients=True)
    with pytest.raises(ConfigError, match="optimizer 'sgd'"):
        Trainer(model, synthetic.train, None, TrainConfig())
    with pytest.raises(ConfigError, match="clip_norm"):
        Trainer(model, synthetic.train, None, TrainConfig(optimizer="sgd", clip_norm=1.0))
    with pytest.raises(ConfigError, match="sparse_gradients"):
        build_model("fasttext", sparse_gradients=True, word_dropout=0.1)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        TrainConfig(optimizer="rmsprop")


@pytest.mark.slow
def test_sgd_with_linear_decay_learns_the_synthetic_corpus(synthetic, one_thread):
    import seqlab

    config = seqlab.TrainConfig(epochs=8, batch_size=8, learning_rate=5.0, optimizer="sgd", schedule="linear",
                                validation_split=0.0)
    model, result = seqlab.train_model("fasttext", synthetic, config, embedding_dim=16, buckets=4096,
                                       sparse_gradients=True)
    assert result.test["accuracy"] > 0.8
    assert len(result.history["loss"]) == 8 and result.history["loss"][-1] < result.history["loss"][0]


def test_binary_bags_count_each_distinct_word_and_pair_once():
    """Oracle: the mean of the distinct vectors of "a a b a a" (words a, b; pairs aa, ab, ba), by hand."""
    model = build_model("fasttext", vocab_size=20, embedding_dim=4, buckets=31, ngrams=2, binary=True).eval()
    a, b = 5, 9
    ids, lengths = torch.tensor([[a, a, b, a, a, 0]]), torch.tensor([5])
    pairs = ngrams.ngram_rows(ids[:, :5], 2, 31, model.config.ngram_hash)[0]  # rows of aa, ab, ba, aa
    assert len(set(pairs.tolist())) == 3  # three distinct pairs in distinct rows
    words, table = model.embedding.weight, model.ngram_embedding.weight
    expected = (words[a] + words[b] + table[pairs[0]] + table[pairs[1]] + table[pairs[2]]) / 5
    for mean in (model._bag_mean(ids, lengths), model._padded_mean(ids, lengths)):
        torch.testing.assert_close(mean[0], expected)
    counted = build_model("fasttext", config=ngrams.NgramBagConfig(**{**vars(model.config), "binary": False}))
    counted.load_state_dict(model.state_dict())
    assert not torch.allclose(counted._bag_mean(ids, lengths)[0], expected)  # counts: a four times, aa twice
