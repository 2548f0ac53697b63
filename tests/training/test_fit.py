import numpy as np
import pytest
import torch

from seqlab.evaluation.predicting import evaluate
from seqlab.models import build_model
from seqlab.training.callbacks import EarlyStopping
from seqlab.training.fit import Trainer, TrainConfig, split_validation


@pytest.mark.slow
@pytest.mark.parametrize("name,epochs", [("rnn", 3), ("lstm", 2)])
def test_learns_sentiment_from_real_reviews(reviews, name, epochs):
    """9,600 training reviews; accuracy on 2,000 held-out test reviews.

    The SimpleRNN's validation accuracy swings from epoch to epoch on this little data, so
    it keeps its best epoch's weights (chosen on validation reviews, never on test ones).
    """
    training = TrainConfig(epochs=epochs, batch_size=32)
    train, validation = split_validation(reviews.train, training.validation_split, training.seed)
    torch.manual_seed(training.seed)
    model = build_model(name, vocab_size=reviews.encoder.vocab_size)
    history = Trainer(model, train, validation, training, callbacks=[EarlyStopping("val_accuracy")]).fit()
    assert history.loss[-1] < history.loss[0]
    assert evaluate(model, reviews.test)["accuracy"] >= 0.70


def test_early_stopping_stops_and_restores_the_best_epoch(synthetic):
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dim=16, hidden_size=8)
    train, validation = split_validation(synthetic.train, 0.2, seed=0)
    stopper = EarlyStopping("val_loss", patience=1)
    # A learning rate this high makes validation loss rise after the first epochs.
    history = Trainer(model, train, validation, TrainConfig(epochs=8, learning_rate=0.05), callbacks=[stopper]).fit()
    best = min(range(len(history.val_loss)), key=history.val_loss.__getitem__)
    assert len(history.val_loss) == best + 2  # stopped one epoch after the best
    assert evaluate(model, validation)["loss"] == pytest.approx(history.val_loss[best], abs=1e-6)


def test_same_seed_same_weights_bit_for_bit(synthetic):
    def run():
        torch.manual_seed(7)
        model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dim=16, hidden_size=8)
        history = Trainer(model, synthetic.train, synthetic.test, TrainConfig(epochs=2, batch_size=64, seed=7)).fit()
        return model.state_dict(), history

    (first, history_a), (second, history_b) = run(), run()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert history_a.loss == history_b.loss and history_a.val_accuracy == history_b.val_accuracy


def test_validation_split_is_the_last_share_of_the_shuffled_set(synthetic):
    train, validation = split_validation(synthetic.train, 0.2, seed=42)
    assert (len(train), len(validation)) == (480, 120)
    order = np.random.default_rng(42).permutation(600)
    assert np.array_equal(validation.labels, synthetic.train.labels[order[-120:]])
    assert split_validation(synthetic.train, 0.0, seed=42)[1] is None


def test_bucketed_batches_give_the_same_predictions_as_one_at_a_time(synthetic):
    from seqlab.evaluation.predicting import predict_logits

    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size).eval()
    split = synthetic.test.take(np.arange(40))
    batched = predict_logits(model, split, batch_size=16)
    single = torch.cat([predict_logits(model, split.take(np.array([i])), batch_size=1) for i in range(40)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


def test_each_epochs_validation_computes_only_what_the_history_keeps(synthetic, monkeypatch):
    import sklearn.metrics

    def full_metrics(*args, **kwargs):
        raise AssertionError("an epoch's validation computed the full metrics (F1, ROC-AUC)")

    for name in ("f1_score", "roc_auc_score"):
        monkeypatch.setattr(sklearn.metrics, name, full_metrics)
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, hidden_size=4)
    train, validation = synthetic.train.take(np.arange(96)), synthetic.test.take(np.arange(48))
    kept = Trainer(model, train, validation, TrainConfig(epochs=1, batch_size=32)).fit().__dict__
    logs = {key: values for key, values in kept.items() if values}  # a language model's perplexity stays empty
    assert sorted(logs) == ["accuracy", "loss", "seconds", "val_accuracy", "val_loss"]
    assert [len(values) for values in logs.values()] == [1] * 5
    monkeypatch.undo()
    expected = evaluate(model, validation)
    assert logs["val_loss"][0] == pytest.approx(expected["loss"], abs=1e-6)
    assert logs["val_accuracy"][0] == pytest.approx(expected["accuracy"], abs=1e-9)
