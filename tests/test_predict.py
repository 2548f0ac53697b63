import pytest
import torch

from seqlab.errors import SeqlabError
from seqlab.models import build_model
from seqlab.predict import load
from seqlab.runs import save_run


@pytest.fixture(scope="module")
def predictor(tmp_path_factory, synthetic):
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=synthetic.encoder.vocab_size, embedding_dim=16, hidden_size=8)
    directory = tmp_path_factory.mktemp("runs") / "gru"
    save_run(directory, model, synthetic.encoder, synthetic.label_names, {}, {}, {})
    return load(directory)


def test_predictions_have_labels_and_probabilities(predictor):
    [prediction] = predictor.predict("A wonderful, moving film.")
    assert prediction.label in ("negative", "positive")
    assert prediction.probabilities[prediction.label] == prediction.probability
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_empty_text_is_predicted_from_the_start_token(predictor):
    [prediction] = predictor.predict([""])
    assert prediction.tokens == 1 and not prediction.truncated


def test_long_text_is_cut_like_training_and_says_so(predictor):
    words = "good " * 500
    [prediction] = predictor.predict([words])
    assert prediction.tokens == 200 and prediction.truncated
    # Cutting keeps the last 200 tokens: adding words at the front changes nothing.
    [longer] = predictor.predict(["awful " * 100 + words])
    assert longer.probability == prediction.probability


def test_predictor_uses_the_encoder_saved_with_the_model(predictor, synthetic):
    assert predictor.encoder.to_json() == synthetic.encoder.to_json()


def test_non_string_input_is_rejected_clearly(predictor):
    with pytest.raises(SeqlabError, match="item 1 is int"):
        predictor.predict(["fine", 3])


def test_no_texts_give_no_predictions(predictor):
    assert predictor.predict([]) == []


def test_bfloat16_predictions_stay_close_to_float32(predictor, synthetic_corpus):
    from seqlab.predict import Predictor, TorchBackend

    fast = Predictor(predictor.run, backend=TorchBackend(predictor.run.model, "bfloat16"))
    texts = synthetic_corpus.test.texts[:64]
    assert abs(fast.predict_proba(texts) - predictor.predict_proba(texts)).max() < 1e-2
    assert predictor.run.model.embedding.weight.dtype == torch.float32  # the run's model is untouched


def test_unknown_precision_lists_the_valid_ones(predictor):
    from seqlab.predict import TorchBackend

    with pytest.raises(SeqlabError, match="float32 or bfloat16"):
        TorchBackend(predictor.run.model, "int4")


@pytest.mark.slow
def test_evaluate_scores_texts_as_training_scores_their_ids(predictor, imdb_corpus):
    """`seqlab evaluate` and a training run's test figures come from one metrics function."""
    import numpy as np

    from seqlab.evaluation.predicting import evaluate
    from seqlab.text.cache import EncodedSplit

    rows = np.linspace(0, len(imdb_corpus.test.texts) - 1, 64).astype(int)  # both classes
    texts, labels = [imdb_corpus.test.texts[row] for row in rows], imdb_corpus.test.labels[rows]
    scores = predictor.evaluate(texts, labels)
    expected = evaluate(predictor.model, EncodedSplit(predictor.encoder.encode(texts), labels),
                        label_names=predictor.label_names)
    assert scores.keys() == expected.keys() == {"accuracy", "loss", "f1", "roc_auc", "recall"}
    for key in ("accuracy", "loss", "f1", "roc_auc"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-6)
    assert scores["recall"] == pytest.approx(expected["recall"], abs=1e-6)
    assert set(scores["recall"]) == set(predictor.label_names)
