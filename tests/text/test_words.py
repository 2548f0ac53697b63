"""The bulk word splitter against its oracle: the Hugging Face tokenizer the encoder saves."""

from __future__ import annotations

import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import trainers

from seqlab.text.encoder import RESERVED, START, UNKNOWN, EncoderConfig, TextEncoder, truncate
from seqlab.text import words
from seqlab.text.words import SplitTexts, WordIds, most_frequent, split_piece


def reference_ids(encoder: TextEncoder, texts: list[str]) -> list[list[int]]:
    """The straightforward way: the saved tokenizer text by text, then the start token and cutting."""
    encodings = encoder.tokenizer.encode_batch(texts, add_special_tokens=False)
    start = [START] if encoder.config.start_token else []
    return [list(truncate(start + e.ids, encoder.config.maxlen, encoder.config.truncating)) for e in encodings]


def fitted_by_hugging_face(texts: list[str], config: EncoderConfig) -> TextEncoder:
    tokenizer = TextEncoder._blank_tokenizer(config)
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(
        vocab_size=config.max_features, special_tokens=list(RESERVED), show_progress=False))
    return TextEncoder(tokenizer, config)


def assigned_characters() -> list[str]:
    """Every character this Python's Unicode tables assign (the tokenizer's tables may be newer)."""
    return [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")]


def test_every_character_splits_and_folds_case_as_the_tokenizer():
    tokenizer = TextEncoder._blank_tokenizer(EncoderConfig())
    characters = [c for c in assigned_characters() if c != "\x00"]
    texts = [f"a{c}b" for c in characters]  # one word if c may be in a word, else "a" and "b"
    pieces = [word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(" ".join(texts))]
    assert [word for text in texts for word in split_piece(text, lowercase=False)] == pieces
    vocabulary = {word: index for index, word in enumerate(dict.fromkeys(pieces), start=len(RESERVED))}
    ids, _ = WordIds(vocabulary, UNKNOWN, lowercase=False).encode(texts)  # the bulk path: ASCII table + pieces
    assert ids.tolist() == [vocabulary[word] for word in pieces]
    folded = tokenizer.normalizer.normalize_str("\x00".join(characters)).split("\x00")
    assert folded == ["".join(part.lower() for part in c) for c in characters]


text_pieces = st.sampled_from(["<br />", "<br/>", "<BR />", "<br\x1c/>", "<br\u2028>", "don't", "'", "\x00", "ΣΑΣ",
                               "8½", "Ⓐb", "e\u0301", "İ", "a_b", "a‿b", "—", " ", "\n", "10/10", "x²", "ﬁ"])
texts = st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cn", "Co")), max_size=30) | text_pieces,
                 max_size=6).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, min_size=1, max_size=8), st.sampled_from(["pre", "post"]), st.booleans(), st.booleans())
def test_ids_equal_the_tokenizers_on_any_text(batch, truncating, lowercase, start_token):
    config = EncoderConfig(max_features=60, maxlen=7, truncating=truncating, lowercase=lowercase,
                           start_token=start_token)
    encoder = TextEncoder.fit(batch + ["don't stop 8 a b e ΣΑΣ σας"], config)
    encoded = encoder.encode(batch)
    assert [encoded.sequence(i).tolist() for i in range(len(batch))] == reference_ids(encoder, batch)
    reference_lengths = [len(e.ids) + start_token for e in encoder.tokenizer.encode_batch(batch, add_special_tokens=False)]
    assert encoded.full_lengths.tolist() == reference_lengths
    others = [text.upper() for text in batch] + ["zzz"]  # words the fitted texts lack, in the same split
    fitted, (at_once, other) = TextEncoder.fit_encode(batch, config, others=[others])  # one split for all
    assert fitted.tokenizer.get_vocab() == TextEncoder.fit(batch, config).tokenizer.get_vocab()
    for encoded_together, alone in [(at_once, fitted.encode(batch)), (other, fitted.encode(others))]:
        assert np.array_equal(encoded_together.ids, alone.ids)
        assert np.array_equal(encoded_together.offsets, alone.offsets)
        assert np.array_equal(encoded_together.full_lengths, alone.full_lengths)


@pytest.mark.slow
def test_vocabulary_and_ids_on_real_reviews(imdb_corpus):
    texts = list(imdb_corpus.train.texts[:3_000]) + list(imdb_corpus.train.texts[-3_000:])
    config = EncoderConfig(max_features=2_000, maxlen=300)
    ours, theirs = TextEncoder.fit(texts, config), fitted_by_hugging_face(texts, config)
    assert ours.tokenizer.get_vocab() == theirs.tokenizer.get_vocab()  # ties included: counts equal at the tail
    held_out = list(imdb_corpus.test.texts[:2_000])
    encoded = ours.encode(held_out)
    assert [encoded.sequence(i).tolist() for i in range(len(held_out))] == reference_ids(theirs, held_out)
    assert (encoded.ids == UNKNOWN).any() and (encoded.full_lengths > 300).any()  # both paths exercised


def test_counts_and_ties():
    counts = SplitTexts(["b a", "A c", "c b", "d"]).word_counts()
    assert counts == {"a": 2, "b": 2, "c": 2, "d": 1}
    assert most_frequent(counts, 3) == ["a", "b", "c"]
    assert SplitTexts(["Café CAFÉ café"], lowercase=True).word_counts() == {"café": 3}


def test_counts_cover_only_the_texts_asked_for():
    split = SplitTexts(["b a", "a c", "zebra zebra zebra"])
    assert split.word_counts(first=2) == {"a": 2, "b": 1, "c": 1}  # zebra: only after the first two
    assert split.word_counts(first=0) == {} and split.word_counts() == {"a": 2, "b": 1, "c": 1, "zebra": 3}


@pytest.mark.slow
def test_helper_processes_give_the_codes_of_one_process(imdb_corpus):
    """Oracle: the same texts split here alone; shares split in other processes, then renumbered."""
    texts = list(imdb_corpus.train.texts[:1_500]) + ["Café CAFÉ", "", "naïve\x00<br />x"]
    alone = SplitTexts(texts, processes=1)
    for processes in (2, 3):
        shared = SplitTexts(texts, processes=processes)
        assert shared.pieces == alone.pieces
        assert np.array_equal(shared.codes, alone.codes)
    assert SplitTexts(texts[:1], processes=4).pieces == SplitTexts(texts[:1], processes=1).pieces


@pytest.mark.parametrize("script", [
    "import sys; sys.exit(3)",  # dies before answering
    "import sys; sys.stdout.buffer.write(bytes([9]) + bytes(7) + b'ab')",  # a reply cut short
    "import sys; [sys.stdout.buffer.write(len(f).to_bytes(8, 'little') + f) for f in (b'x y', bytes(4))]",  # wrong codes
])
def test_a_failed_helper_leaves_its_share_to_this_process(monkeypatch, script):
    monkeypatch.setattr(words, "_HELPER_MAIN", script)
    texts = ["one two", "two three", "three four", "four"]
    assert np.array_equal(SplitTexts(texts, processes=2).codes, SplitTexts(texts, processes=1).codes)


def test_texts_holding_nul_and_empty_texts_keep_their_boundaries():
    word_ids = WordIds({"a": 3, "b": 4}, UNKNOWN)
    ids, offsets = word_ids.encode(["a\x00b", "", "b", "\x00"])
    assert ids.tolist() == [3, 4, 4] and offsets.tolist() == [0, 2, 2, 3, 3]
    ids, offsets = word_ids.encode([])
    assert ids.tolist() == [] and offsets.tolist() == [0]


def test_remembered_pieces_are_bounded(monkeypatch):
    monkeypatch.setattr(WordIds, "MEMORY", 5)
    word_ids = WordIds({"é": 3}, UNKNOWN)
    for round_ in range(4):
        ids, _ = word_ids.encode([" ".join(f"é{round_}{n}x—y" for n in range(10))])
        assert len(ids) == 20 and len(word_ids) <= 5 + 2 + 10
    assert word_ids.encode(["é"])[0].tolist() == [3]


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 2_500, 12_000])
def test_chunking_gives_the_same_ids(imdb_corpus, size, monkeypatch):
    texts = list(imdb_corpus.test.texts[:size])
    whole = WordIds(TextEncoder.fit(texts, EncoderConfig()).tokenizer.get_vocab(), UNKNOWN).encode(texts)
    monkeypatch.setattr("seqlab.text.words.CHUNK", 7)
    pieces = WordIds(TextEncoder.fit(texts, EncoderConfig()).tokenizer.get_vocab(), UNKNOWN).encode(texts)
    assert np.array_equal(whole[0], pieces[0]) and np.array_equal(whole[1], pieces[1])
