from dataclasses import replace

import numpy as np
import pytest

from seqlab.data.corpus import Corpus, Split
from seqlab.errors import ConfigError
from seqlab.models.embeddings import embedding_matrix, read_vectors
from seqlab.text.cache import encode_corpus
from seqlab.text.encoder import EncoderConfig
from seqlab.text.word2vec import Word2VecConfig, cached_word2vec, split_words, word2vec_texts

SMALL = Word2VecConfig(dimension=16, epochs=2, min_count=3, workers=1)


@pytest.fixture(scope="module")
def small_corpus(imdb_corpus):
    """2,000 real training reviews, 2,000 real reviews standing in for unlabelled ones, and test
    reviews that carry a word found nowhere else."""
    sample = imdb_corpus.subset(2000, 200, seed=1)
    marked = [text + " zzqtestonlyword zzqtestonlyword zzqtestonlyword" for text in sample.test.texts]
    return replace(sample, test=Split(marked, sample.test.labels),
                   unlabelled=list(imdb_corpus.test.texts[-2000:]))


@pytest.mark.slow
def test_learns_from_training_and_unlabelled_texts_never_test(small_corpus, tmp_path):
    texts = word2vec_texts(small_corpus)
    assert len(texts) == 4000 and not set(small_corpus.test.texts) & set(texts)
    path, hit = cached_word2vec(small_corpus, EncoderConfig(), SMALL, tmp_path)
    vectors = read_vectors(path)
    assert not hit and vectors.dimension == 16
    assert "zzqtestonlyword" not in vectors.words  # 600 occurrences, all in test reviews
    assert {"movie", "film", "great", "bad"} <= set(vectors.words)
    encoded = encode_corpus(small_corpus, EncoderConfig(max_features=5000))
    matrix = embedding_matrix(vectors, encoded.encoder)
    assert matrix.coverage > 0.9  # the words are split exactly as the encoder splits them


@pytest.mark.slow
def test_cached_by_fingerprint_and_settings(small_corpus, tmp_path):
    first, _ = cached_word2vec(small_corpus, EncoderConfig(), SMALL, tmp_path)
    again, hit = cached_word2vec(small_corpus, EncoderConfig(), SMALL, tmp_path, out=tmp_path / "copy.bin")
    assert hit and again == tmp_path / "copy.bin" and again.read_bytes() == first.read_bytes()
    fewer = replace(small_corpus, unlabelled=small_corpus.unlabelled[:10])
    _, hit = cached_word2vec(fewer, EncoderConfig(), replace(SMALL, epochs=1), tmp_path)
    assert not hit


def test_words_split_like_the_encoder():
    assert split_words(["A <br />GREAT film, isn't it?"], EncoderConfig()) == [["a", "great", "film", "isn't", "it"]]


def test_empty_texts_are_refused(tmp_path):
    empty = Corpus("empty", Split([""], np.array([0])), Split([""], np.array([0])), ("a", "b"), "empty")
    with pytest.raises(ConfigError, match="needs some text"):
        cached_word2vec(empty, EncoderConfig(), SMALL, tmp_path)
