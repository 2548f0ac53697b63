"""word2vec (gensim) trained on the training and unlabelled texts of a corpus, never its test texts.

Words are split exactly as the TextEncoder splits them, so the vectors line up with the
vocabulary. The vectors are cached on disk, keyed by the corpus fingerprint, the word
splitting and every training setting, in word2vec's binary format (no pickle).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from seqlab.data.corpus import Corpus
from seqlab.errors import ConfigError
from seqlab.files import atomic_path
from seqlab.text.config import EncoderConfig, Word2VecConfig
from seqlab.text.encoder import TextEncoder

FORMAT = 1


def word2vec_texts(corpus: Corpus) -> list[str]:
    """The texts word2vec may learn from: training and unlabelled, never test."""
    return list(corpus.train.texts) + list(corpus.unlabelled)


def split_words(texts: list[str], encoder: EncoderConfig) -> list[list[str]]:
    """Each text as the encoder's words (same normalisation and splitting)."""
    tokenizer = TextEncoder._blank_tokenizer(encoder)
    normalize, split = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
    return [[word for word, _ in split(normalize(text))] for text in texts]


def train_word2vec(texts: list[str], encoder: EncoderConfig, config: Word2VecConfig, path: Path) -> Path:
    """Train on `texts` and write the vectors to `path` (word2vec binary), atomically."""
    from gensim.models import Word2Vec

    sentences = split_words(texts, encoder)
    if not any(sentences):
        raise ConfigError("word2vec needs some text: the training and unlabelled texts are empty")
    model = Word2Vec(
        sentences, vector_size=config.dimension, window=config.window, min_count=config.min_count,
        epochs=config.epochs, sg=int(config.skip_gram), negative=config.negative, workers=config.workers,
        seed=config.seed,
    )
    if not len(model.wv):
        raise ConfigError(f"no word occurs {config.min_count} times; lower min_count")
    with atomic_path(path) as temporary:
        model.wv.save_word2vec_format(str(temporary), binary=True)
    return path


def cache_key(fingerprint: str, encoder: EncoderConfig, config: Word2VecConfig) -> str:
    words = {"lowercase": encoder.lowercase}  # the only encoder setting that changes the words
    material = json.dumps({"format": FORMAT, "source": fingerprint, "words": words, "word2vec": asdict(config)},
                          sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def cached_word2vec(corpus: Corpus, encoder: EncoderConfig, config: Word2VecConfig, cache_root: Path | None,
                    out: Path | None = None) -> tuple[Path, bool]:
    """The vectors for `corpus` from the cache, else trained and stored. Returns (path, from cache).

    With `out` the file is (also) written there."""
    if cache_root is None:
        path = out or Path("word2vec.bin")
        return train_word2vec(word2vec_texts(corpus), encoder, config, path), False
    source = f"{corpus.fingerprint}:unlabelled={len(corpus.unlabelled)}"
    path = cache_root / "word2vec" / f"{cache_key(source, encoder, config)}.bin"
    hit = path.is_file()
    if not hit:
        train_word2vec(word2vec_texts(corpus), encoder, config, path)
    if out is not None and Path(out) != path:
        with atomic_path(Path(out)) as temporary:
            temporary.write_bytes(path.read_bytes())
        return Path(out), hit
    return path, hit
