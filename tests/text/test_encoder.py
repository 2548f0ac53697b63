import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import ConfigError
from seqlab.text.encoder import PAD, START, UNKNOWN, EncoderConfig, TextEncoder, pad_sequences, truncate

CORPUS = ["The film was great, great fun!", "A dull film.<br /><br />Dull and long.", "great acting; dull plot"]


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder.fit(CORPUS, EncoderConfig(max_features=8, maxlen=5))


def test_reserved_ids_and_frequency_order(encoder):
    vocabulary = encoder.tokenizer.get_vocab()
    assert [vocabulary[t] for t in ("<pad>", "<start>", "<unk>")] == [PAD, START, UNKNOWN]
    # most frequent first: 'dull' and 'great' (3 each, ties alphabetical), then 'film' (2)
    assert [vocabulary["dull"], vocabulary["great"], vocabulary["film"]] == [3, 4, 5]
    assert encoder.vocab_size == 8


def test_normalisation_lowercases_and_drops_html_breaks(encoder):
    assert encoder.words("Great<br />FILM, isn't it?") == ["great", "film", "isn't", "it"]


def test_encode_starts_with_start_token_and_maps_unknown_words(encoder):
    ids = encoder.encode(["great zebra"]).sequence(0).tolist()
    assert ids == [START, 4, UNKNOWN]


def test_round_trip_for_known_words(encoder):
    text = "great film dull"
    assert encoder.decode(encoder.encode([text]).sequence(0)) == "? " + text


def test_decode_marks_reserved_and_skips_padding(encoder):
    assert encoder.decode([0, 0, 1, 4, 2]) == "? great ?"
    assert encoder.decode([0, 4], skip_padding=False) == "? great"


def test_truncation_keeps_the_end_by_default(encoder):
    encoded = encoder.encode(["dull " * 10 + "great"])
    assert encoded.lengths.tolist() == [5] and encoded.full_lengths.tolist() == [12]
    assert encoded.truncated.tolist() == [True]
    assert encoded.sequence(0).tolist()[-1] == 4  # 'great' kept, the start token cut


def test_truncation_post_keeps_the_start():
    encoder = TextEncoder.fit(CORPUS, EncoderConfig(max_features=8, maxlen=3, truncating="post"))
    assert encoder.encode(["great film dull acting"]).sequence(0).tolist()[:2] == [START, 4]


def test_empty_text_is_the_start_token_alone(encoder):
    assert encoder.encode([""]).sequence(0).tolist() == [START]


def test_pad_sequences_matches_keras_semantics():
    sequences = [[1, 2, 3, 4], [5]]
    assert pad_sequences(sequences, 3).tolist() == [[2, 3, 4], [0, 0, 5]]
    assert pad_sequences(sequences, 3, padding="post", truncating="post").tolist() == [[1, 2, 3], [5, 0, 0]]
    assert truncate([1, 2, 3], 2, "pre") == [2, 3]


def test_json_round_trip_encodes_identically(encoder):
    again = TextEncoder.from_json(encoder.to_json())
    texts = ["Great film!", "zebra dull", ""]
    assert np.array_equal(again.encode(texts).ids, encoder.encode(texts).ids)
    assert again.config == encoder.config


@pytest.mark.slow
def test_vocabulary_size_on_real_reviews(reviews):
    assert reviews.encoder.vocab_size == 10_000
    assert reviews.train.encoded.ids.max() < 10_000 and reviews.train.encoded.ids.min() >= 1
    assert reviews.train.lengths.max() == 200


@pytest.mark.parametrize("field,value", [("max_features", 2), ("maxlen", 0), ("padding", "middle")])
def test_bad_settings_are_rejected(field, value):
    with pytest.raises(ConfigError, match=field):
        EncoderConfig(**{field: value})


KNOWN = st.sampled_from(["great", "Film", "DULL", "acting"])
MIXED_TEXT = st.lists(st.one_of(KNOWN, st.text(max_size=20)), max_size=30).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), MIXED_TEXT))
def test_any_unicode_encodes_within_vocabulary_and_decoding_is_stable(encoder, text):
    ids = encoder.encode([text]).sequence(0)
    assert 1 <= len(ids) <= encoder.config.maxlen
    assert ids.min() >= 0 and ids.max() < encoder.vocab_size
    # Decoding then encoding again gives back every known word's id, in order.
    again = encoder.encode([encoder.decode(ids)]).sequence(0)
    assert [i for i in again if i > UNKNOWN] == [i for i in ids if i > UNKNOWN]
