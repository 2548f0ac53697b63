"""Explanations: scores land on the right words of the original text, truncation included,
each method means what it says, and on a trained model sentiment words push the right way."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.explain import explain
from seqlab.models.base import Output, SequenceClassifier
from seqlab.predict import Predictor, load
from seqlab.runs import Run
from seqlab.text.encoder import UNKNOWN, EncoderConfig, TextEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def predictor(trained_run):
    return load(trained_run)


class AttentionToy(SequenceClassifier):
    """Attention pooling over word vectors: enough to check that weights reach the right words."""

    name = "attention-toy"

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8)
        self.query = nn.Linear(8, 1)
        self.head = nn.Linear(8, 1)

    def forward(self, ids, lengths):
        x = self.embedding(ids)  # (batch, time, 8)
        mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # (batch, time)
        weights = torch.softmax(self.query(x).squeeze(-1).masked_fill(~mask, float("-inf")), dim=-1)  # (batch, time)
        return Output(self.head((weights.unsqueeze(-1) * x).sum(1)), weights)


def toy_predictor(maxlen: int, truncating: str = "pre") -> Predictor:
    config = EncoderConfig(max_features=50, maxlen=maxlen, truncating=truncating)
    encoder = TextEncoder.fit(["the film was good", "the plot was bad", "a fine cast"] * 5, config)
    torch.manual_seed(0)
    model = AttentionToy(encoder.vocab_size).eval()
    run = Run(Path("toy"), model, encoder, {"model": {"name": "attention-toy"}, "label_names": ["negative", "positive"]},
              {}, {})
    return Predictor(run)


@pytest.mark.slow
def test_words_keep_their_place_in_the_original_text(predictor):
    text = "Simply <br /><br />WONDERFUL — İstanbul's best film, isn't it?"
    explanation = explain(predictor, text)
    assert [w.text for w in explanation.words] == ["Simply", "WONDERFUL", "İstanbul's", "best", "film", "isn't", "it"]
    assert all(text[w.start:w.end] == w.text for w in explanation.words)
    assert [w.token for w in explanation.words][:2] == ["simply", "wonderful"]
    assert all(w.read and isinstance(w.score, float) for w in explanation.words)


@pytest.mark.slow
def test_occlusion_scores_are_the_probability_drop_when_a_word_is_unknown(predictor):
    text = "a dull, boring film with one brilliant scene"
    explanation = explain(predictor, text, method="occlusion")
    assert explanation.method == "occlusion" and explanation.target == explanation.prediction.label
    target = predictor.label_names.index(explanation.target)
    ids = predictor.encode([text]).encoded.ids.astype(np.int64)
    for position, word in enumerate(explanation.words, start=1):  # position 0 is the start token
        hidden = ids.copy()
        hidden[position] = UNKNOWN
        with torch.no_grad():
            logits = predictor.model(torch.from_numpy(np.stack([ids, hidden])), torch.tensor([len(ids)] * 2)).logits
        p = torch.sigmoid(logits[:, 0]).numpy()
        p = p if target == 1 else 1 - p
        assert word.score == pytest.approx(p[0] - p[1], abs=1e-5)


@pytest.mark.slow
def test_integrated_gradients_add_up_to_the_change_in_log_odds(predictor):
    text = "The acting is superb but the story is weak and predictable."
    explanation = explain(predictor, text, method="integrated_gradients", target="positive")
    ids = torch.from_numpy(predictor.encode([text]).encoded.ids.astype(np.int64))[None]
    with torch.no_grad():
        real = predictor.model(ids, torch.tensor([ids.shape[1]])).logits[0, 0]
        handle = predictor.model.embedding.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        baseline = predictor.model(ids, torch.tensor([ids.shape[1]])).logits[0, 0]
        handle.remove()
    total = sum(w.score for w in explanation.words) + explanation.start_token
    assert total == pytest.approx(float(real - baseline), rel=0.05, abs=0.02)


@pytest.mark.parametrize("read", [5, 32])  # 32: as many positions as path steps
def test_integrated_gradients_answer_the_embedding_in_the_layout_it_was_asked(read):
    from seqlab.explain import IG_STEPS, _arranged_as

    ids = torch.arange(read)[None].expand(IG_STEPS, -1)  # (steps, read): one text, repeated
    path = torch.randn(IG_STEPS, read, 3)
    assert _arranged_as(ids, path) is path
    time_major = _arranged_as(ids.t(), path)  # a recurrent model looks its words up as ids.t()
    assert time_major.shape == (read, IG_STEPS, 3) and torch.equal(time_major.transpose(0, 1), path)


@pytest.mark.slow
def test_sentiment_words_push_the_trained_model_the_right_way(predictor, imdb_corpus):
    """On held-out reviews, occluding 'great'/'excellent' lowers P(positive) and 'worst'/'awful' raises it."""
    pushes = {"good": [], "bad": []}
    goods, bads = {"great", "excellent", "wonderful", "best"}, {"worst", "awful", "boring", "bad"}
    for text in imdb_corpus.test.texts[:: len(imdb_corpus.test.texts) // 40][:40]:
        explanation = explain(predictor, text, method="occlusion", target="positive")
        for word in explanation.words:
            if word.read and word.token in goods:
                pushes["good"].append(word.score)
            if word.read and word.token in bads:
                pushes["bad"].append(word.score)
    assert len(pushes["good"]) >= 10 and len(pushes["bad"]) >= 10
    assert np.mean(pushes["good"]) > 0.01 and np.mean(pushes["bad"]) < -0.01
    assert np.mean(np.array(pushes["good"]) > 0) > 0.8 and np.mean(np.array(pushes["bad"]) < 0) > 0.8


@pytest.mark.slow
def test_truncated_words_get_no_score(predictor):
    maxlen = predictor.encoder.config.maxlen
    text = " ".join(f"w{i}" for i in range(maxlen + 40)) + " great"
    explanation = explain(predictor, text)
    # maxlen + 41 words plus the start token: the start token and the first 41 words were cut.
    assert explanation.words_cut == 41 and explanation.start_token is None
    assert all(not w.read and w.score is None for w in explanation.words[:41])
    assert all(w.read for w in explanation.words[41:]) and explanation.words[-1].text == "great"
    assert explanation.prediction.truncated and explanation.prediction.tokens == maxlen


@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_attention_weights_land_on_the_words_they_belong_to(truncating):
    predictor = toy_predictor(maxlen=6, truncating=truncating)
    text = "the film was good but the plot was bad"  # 9 words + start token = 10 ids, 6 read
    explanation = explain(predictor, text)
    assert explanation.method == "attention"
    encoded = predictor.encode([text]).encoded
    ids = torch.from_numpy(encoded.ids.astype(np.int64))[None]
    with torch.no_grad():
        weights = predictor.model(ids, torch.tensor([ids.shape[1]])).attention[0].numpy()
    read = [w for w in explanation.words if w.read]
    if truncating == "pre":
        assert [w.text for w in read] == text.split()[-6:] and explanation.start_token is None
        assert [w.score for w in read] == pytest.approx(weights.tolist())
    else:
        assert [w.text for w in read] == text.split()[:5]
        assert explanation.start_token == pytest.approx(float(weights[0]))
        assert [w.score for w in read] == pytest.approx(weights[1:].tolist())
    assert explanation.words_cut == (3 if truncating == "pre" else 4)


@pytest.mark.slow
def test_json_form_and_bad_options(predictor):
    data = explain(predictor, "good film").to_dict()
    assert json.loads(json.dumps(data))["words"][0] == {"text": "good", "start": 0, "end": 4, "token": "good",
                                                        "read": True, "score": data["words"][0]["score"]}
    assert "occlusion" in data["description"]
    with pytest.raises(ConfigError, match="no attention weights"):
        explain(predictor, "good film", method="attention")
    with pytest.raises(ConfigError, match="choose one of"):
        explain(predictor, "good film", method="shap")
    with pytest.raises(ConfigError, match="classes: negative, positive"):
        explain(predictor, "good film", target="neutral")


@pytest.mark.slow
def test_empty_text_has_no_words(predictor):
    explanation = explain(predictor, "")
    assert explanation.words == [] and explanation.start_token is not None
