"""Property tests over arbitrary Unicode: emoji, right-to-left scripts, control characters, lone
surrogates, very long words, empty strings. Encoding, decoding and prediction never raise,
ids stay inside the vocabulary, and encode∘decode is stable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqlab import runs
from seqlab.errors import SeqlabError
from seqlab.models import build_model
from seqlab.predict import load
from seqlab.text.encoder import RESERVED, START, UNKNOWN, EncoderConfig, TextEncoder

SEEDS = ["Great film 😀 loved it", "שלום עולם סרט טוב", "مرحبا بالعالم", "très bien, naïve café", "日本語のテキスト",
         "tab\tnew\nline\x00nul\x1bescape", "a" * 500, "Ünïcödé ΣΊΣΥΦΟΣ straße İstanbul", "don't won't isn't", "<br />x"]
# Everything Unicode has, lone surrogates included (Python strings can hold them, UTF-8 cannot).
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
TEXTS = st.one_of(
    st.text(ANY_CHARACTER, max_size=200),
    st.text(st.sampled_from(list("😀👍🏽‍♀️שלוםمرحبا\u200f\u202e\u0301\t\n\x00 ab'")), max_size=60),
    st.lists(st.sampled_from(SEEDS + ["", " ", "\n"]), max_size=6).map(" ".join),
    st.integers(1000, 20_000).map(lambda n: "x" * n),  # one very long word
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.fit(SEEDS * 3, EncoderConfig(max_features=40, maxlen=32))


@pytest.fixture(scope="module")
def long_encoder() -> TextEncoder:
    """The same vocabulary without cutting, for round trips of whole texts."""
    return TextEncoder.fit(SEEDS * 3, EncoderConfig(max_features=40, maxlen=100_000))


@given(texts=st.lists(TEXTS, max_size=5))
@SETTINGS
def test_encoding_never_raises_and_ids_stay_in_the_vocabulary(encoder, texts):
    encoded = encoder.encode(texts)
    assert len(encoded) == len(texts)
    assert ((encoded.ids >= 0) & (encoded.ids < encoder.vocab_size)).all()
    assert (encoded.lengths >= 1).all() and (encoded.lengths <= encoder.config.maxlen).all()
    assert (encoded.full_lengths >= encoded.lengths).all()
    for row in range(len(texts)):
        assert len(encoder.decode(encoded.sequence(row)).split(" ")) == encoded.lengths[row]  # a word or '?' per id


@given(text=TEXTS)
@SETTINGS
def test_encode_of_decode_is_stable(long_encoder, text):
    ids = long_encoder.encode([text]).sequence(0)
    assert ids[0] == START
    known = [int(i) for i in ids[1:] if i != UNKNOWN]  # '?' stands for an unknown word and reads back as nothing
    decoded = long_encoder.decode(known)
    again = long_encoder.encode([decoded]).sequence(0).tolist()
    assert again == [START, *known]
    assert long_encoder.decode(again[1:]) == decoded


@given(texts=st.lists(TEXTS, min_size=1, max_size=8))
@settings(max_examples=40, deadline=None)
def test_a_vocabulary_fitted_on_any_text_round_trips_its_own_words(texts):
    encoder = TextEncoder.fit(texts, EncoderConfig(max_features=30, maxlen=100_000))
    words = list(range(len(RESERVED), encoder.vocab_size))
    assert encoder.encode([encoder.decode(words)]).sequence(0).tolist() == [START, *words]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory, encoder):
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=encoder.vocab_size, num_classes=3, embedding_dim=8, hidden_size=8)
    directory = tmp_path_factory.mktemp("run") / "run"
    runs.save_run(directory, model, encoder, ("ש", "😀", "plain"), {}, {}, {})
    return load(directory)


@given(texts=st.lists(TEXTS, max_size=6))
@SETTINGS
def test_prediction_never_raises_on_any_text(predictor, texts):
    predictions = predictor.predict(texts)
    assert len(predictions) == len(texts)
    for prediction in predictions:
        assert prediction.label in ("ש", "😀", "plain")
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert 1 <= prediction.tokens <= 32
    probabilities = predictor.predict_proba(texts)
    assert probabilities.shape == (len(texts), 3) and np.isfinite(probabilities).all()


@given(item=st.one_of(st.integers(), st.none(), st.binary(), st.floats()))
@settings(max_examples=20, deadline=None)
def test_non_text_gets_a_clear_error(predictor, item):
    with pytest.raises(SeqlabError, match="texts must be strings"):
        predictor.predict(["fine", item])
