"""Encoded corpora: token ids, lengths and labels as arrays, cached on disk by fingerprint.

The cache key covers everything that changes the arrays: the source's fingerprint
(`data.sources.fingerprint`: content, reading options and the subset drawn) and every
encoder setting. A hit skips reading and tokenizing. `pipeline.prepare` is the one caller.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from seqlab.data.corpus import Corpus
from seqlab.errors import DataError
from seqlab.files import atomic_directory
from seqlab.jsonfile import read_json, read_text
from seqlab.text.encoder import Encoded, EncoderConfig, TextEncoder

CACHE_FORMAT = 1


@dataclass(frozen=True)
class EncodedSplit:
    """Ragged ids with one label per text."""

    encoded: Encoded | EncodedView  # flat ids, or a view of some texts (select)
    labels: np.ndarray  # (texts,) int64

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return self.encoded.lengths

    def take(self, indices: np.ndarray) -> EncodedSplit:
        """The texts at `indices`, in that order, without a Python loop over texts."""
        encoded = self.encoded
        lengths = encoded.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Position of every kept token in the flat source array.
        starts = np.repeat(encoded.offsets[indices] - offsets[:-1], lengths)
        flat = encoded.ids[starts + np.arange(offsets[-1])]
        return EncodedSplit(Encoded(flat, offsets, encoded.full_lengths[indices]), self.labels[indices])

    def select(self, indices: np.ndarray) -> EncodedSplit:
        """The texts at `indices` as a view: token ids stay where they are (e.g. memory-mapped on disk)."""
        encoded = self.encoded
        view = EncodedView(encoded.ids, encoded.offsets[indices], encoded.lengths[indices], encoded.full_lengths[indices])
        return EncodedSplit(view, self.labels[indices])


@dataclass(frozen=True)
class EncodedView:
    """Some texts of a flat id array, in any order: text i is ids[offsets[i]:offsets[i] + lengths[i]].

    Reads as `Encoded` does for batching and `take` (offsets are start positions here)."""

    ids: np.ndarray  # (total tokens of the underlying corpus,)
    offsets: np.ndarray  # (texts,) int64 start of each text in ids
    lengths: np.ndarray  # (texts,) int64
    full_lengths: np.ndarray  # (texts,) int64, before cutting to maxlen

    @property
    def truncated(self) -> np.ndarray:
        return self.full_lengths > self.lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index] + self.lengths[index]]


@dataclass(frozen=True)
class EncodedCorpus:
    """A corpus after tokenization: the encoder that made it and its two splits."""

    name: str
    encoder: TextEncoder
    train: EncodedSplit
    test: EncodedSplit
    label_names: tuple[str, ...]


def cache_key(fingerprint: str, config: EncoderConfig) -> str:
    material = json.dumps({"format": CACHE_FORMAT, "source": fingerprint, "encoder": asdict(config)}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def encode_corpus(corpus: Corpus, config: EncoderConfig, vocabulary: TextEncoder | None = None) -> EncodedCorpus:
    """Fit the vocabulary on the training texts only, then encode both splits; with `vocabulary` (a
    pretrained run's encoder), its words and tokenizer, cut to `config`'s maxlen."""
    if vocabulary is not None:
        encoder = vocabulary.with_settings(config)
        train, test = encoder.encode(corpus.train.texts), encoder.encode(corpus.test.texts)
    else:
        encoder, (train, test) = TextEncoder.fit_encode(corpus.train.texts, config, others=[corpus.test.texts])
    return EncodedCorpus(
        name=corpus.name,
        encoder=encoder,
        train=EncodedSplit(train, corpus.train.labels),
        test=EncodedSplit(test, corpus.test.labels),
        label_names=corpus.label_names,
    )


def load_or_encode(
    fingerprint: str, read: Callable[[], Corpus], config: EncoderConfig, cache_root: Path | None,
    vocabulary: TextEncoder | None = None,
) -> tuple[EncodedCorpus, bool]:
    """The encoded corpus from the cache if present, else read + encode (with `vocabulary`'s words
    if given, see encode_corpus; `fingerprint` must then name it) + store.

    Returns the corpus and whether it came from the cache.
    """
    if cache_root is None:
        return encode_corpus(read(), config, vocabulary), False
    directory = cache_root / "encoded" / cache_key(fingerprint, config)
    if (directory / "meta.json").is_file():
        try:
            return _load(directory), True
        except (OSError, ValueError, KeyError):
            shutil.rmtree(directory, ignore_errors=True)  # damaged entry: rebuild it
    corpus = encode_corpus(read(), config, vocabulary)
    _store(corpus, directory, fingerprint)
    return corpus, False


_ARRAYS = ("ids", "offsets", "full_lengths", "labels")


def _store(corpus: EncodedCorpus, directory: Path, fingerprint: str) -> None:
    with atomic_directory(directory) as staging:
        for split_name in ("train", "test"):
            split = getattr(corpus, split_name)
            arrays = {"ids": split.encoded.ids, "offsets": split.encoded.offsets,
                      "full_lengths": split.encoded.full_lengths, "labels": split.labels}
            for array_name, array in arrays.items():
                np.save(staging / f"{split_name}_{array_name}.npy", array)
        (staging / "encoder.json").write_text(corpus.encoder.to_json())
        meta = {"format": CACHE_FORMAT, "name": corpus.name, "source": fingerprint,
                "label_names": list(corpus.label_names)}
        (staging / "meta.json").write_text(json.dumps(meta))


def _load(directory: Path) -> EncodedCorpus:
    fix = f"delete {directory} and it is made again"
    meta = read_json(directory / "meta.json", error=DataError, fix=fix)
    splits = {}
    for split_name in ("train", "test"):
        a = {name: np.load(directory / f"{split_name}_{name}.npy", allow_pickle=False) for name in _ARRAYS}
        splits[split_name] = EncodedSplit(Encoded(a["ids"], a["offsets"], a["full_lengths"]), a["labels"])
    return EncodedCorpus(
        name=meta["name"],
        encoder=TextEncoder.from_json(read_text(directory / "encoder.json", DataError, fix)),
        train=splits["train"],
        test=splits["test"],
        label_names=tuple(meta["label_names"]),
    )
