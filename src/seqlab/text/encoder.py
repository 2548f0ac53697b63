"""Text to token ids and back: normalise, split into words, map through a vocabulary.

Reserved ids follow ``keras.datasets.imdb``: 0 padding, 1 start of review, 2 out of
vocabulary; words take ids 3 .. max_features - 1, most frequent first.

The tokenizer is a standard Hugging Face ``tokenizer.json`` (normalizer, pre-tokenizer,
WordLevel vocabulary, and a post-processor that adds the start token), so
``tokenizers.Tokenizer.from_file(RUN / "tokenizer.json").encode(text).ids`` are seqlab's ids
before the cut to maxlen. The cut stays seqlab's (``encoder.json``'s settings, and the ONNX
metadata): Keras's ``truncating="pre"`` drops the start token of a long text, which a Hugging
Face truncation (it always keeps special tokens) cannot say. ``encoder.json`` holds those
settings and names the tokenizer file, so a run directory has one copy of the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

from seqlab.text.config import RESERVED, EncoderConfig
from seqlab.text.words import SplitTexts, WordIds, most_frequent

PAD, START, UNKNOWN = 0, 1, 2
ENCODER_FILE, TOKENIZER_FILE = "encoder.json", "tokenizer.json"


@dataclass(frozen=True)
class Encoded:
    """Ragged token ids, flat: text i is ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # (total tokens,) int32
    offsets: np.ndarray  # (texts + 1,) int64
    full_lengths: np.ndarray  # (texts,) int64, before cutting to maxlen

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def truncated(self) -> np.ndarray:
        return self.full_lengths > self.lengths

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sequence(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]


class TextEncoder:
    """Tokenizer + vocabulary, saved as one JSON document alongside every model."""

    def __init__(self, tokenizer: Tokenizer, config: EncoderConfig):
        tokenizer.post_processor = _start_processor(config)
        self.tokenizer = tokenizer
        self.config = config
        vocabulary = tokenizer.get_vocab()
        self._words = [""] * len(vocabulary)
        for word, index in vocabulary.items():
            self._words[index] = word
        # The same ids as `tokenizer`, several times faster on many texts (text/words.py).
        self._word_ids = WordIds(vocabulary, UNKNOWN, config.lowercase)

    @staticmethod
    def _blank_tokenizer(config: EncoderConfig) -> Tokenizer:
        tokenizer = Tokenizer(models.WordLevel(unk_token=RESERVED[UNKNOWN]))
        steps: list[normalizers.Normalizer] = [normalizers.Replace(Regex(r"<br\s*/?>"), " ")]
        if config.lowercase:
            steps.append(normalizers.Lowercase())
        tokenizer.normalizer = normalizers.Sequence(steps)
        # Words are runs of letters, digits, '_' and apostrophes; everything else separates them.
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[^\w']+"), behavior="removed")
        return tokenizer

    @classmethod
    def fit(cls, texts: Sequence[str], config: EncoderConfig | None = None) -> TextEncoder:
        """Build the vocabulary from the most frequent words of `texts` (ties: code point order,
        as Hugging Face's WordLevelTrainer orders them)."""
        config = config or EncoderConfig()
        return cls._fit(SplitTexts(_sliceable(texts), config.lowercase), config)

    @classmethod
    def fit_encode(cls, texts: Sequence[str], config: EncoderConfig | None = None,
                   others: Sequence[Sequence[str]] = ()) -> tuple[TextEncoder, list[Encoded]]:
        """fit(texts), then the encoding of `texts` and of each of `others` (e.g. the test texts):
        all of them split once, together (in several processes when they are many)."""
        config = config or EncoderConfig()
        groups = [_sliceable(texts), *map(_sliceable, others)]
        split = SplitTexts([text for group in groups for text in group] if len(groups) > 1 else groups[0],
                           config.lowercase)
        encoder = cls._fit(split, config, first=len(groups[0]))
        words, offsets = split.ids(encoder._word_ids)
        bounds = np.cumsum([0, *map(len, groups)])
        return encoder, [encoder._cut(words, offsets[start : end + 1]) for start, end in zip(bounds[:-1], bounds[1:])]

    @classmethod
    def _fit(cls, split: SplitTexts, config: EncoderConfig, first: int | None = None) -> TextEncoder:
        """The encoder whose vocabulary is the most frequent words of the first `first` texts split."""
        counts = split.word_counts(first)
        kept = [*RESERVED, *most_frequent(counts, config.max_features - len(RESERVED))]
        tokenizer = cls._blank_tokenizer(config)
        tokenizer.model = models.WordLevel({word: index for index, word in enumerate(kept)}, unk_token=RESERVED[UNKNOWN])
        return cls(tokenizer, config)

    def with_settings(self, config: EncoderConfig) -> TextEncoder:
        """This vocabulary and tokenizer, reading texts as `config` says (maxlen, truncating, start token);
        its max_features becomes this vocabulary's size."""
        if config.lowercase != self.config.lowercase:
            raise ValueError(f"this vocabulary was built with lowercase={self.config.lowercase}; "
                             f"it cannot read texts with lowercase={config.lowercase}")
        return TextEncoder(Tokenizer.from_str(self.tokenizer.to_str()), replace(config, max_features=self.vocab_size))

    def fingerprint(self) -> str:
        """A short digest of the vocabulary and tokenizer (for cache keys)."""
        return hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest()[:16]

    @property
    def vocab_size(self) -> int:
        """Ids the embedding must hold (max_features, or fewer if the corpus has fewer words)."""
        return len(self._words)

    def words(self, text: str) -> list[str]:
        """The words of `text` as the model sees them, unknown ones included."""
        return [word for word, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(self.tokenizer.normalizer.normalize_str(text))]

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Ids of every text, cut to maxlen on the configured side (no padding)."""
        return self._cut(*self._word_ids.encode(_sliceable(texts)))

    def _cut(self, words: np.ndarray, word_offsets: np.ndarray) -> Encoded:
        """The start token before each text's words, then each text cut to maxlen."""
        start = int(self.config.start_token)
        full_lengths = np.diff(word_offsets) + start  # (texts,)
        lengths = np.minimum(full_lengths, self.config.maxlen)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Where each kept token is in `words`: text i's k-th kept token is its (first_i + k - start)-th word.
        first = full_lengths - lengths if self.config.truncating == "pre" else np.zeros_like(lengths)
        source = np.arange(offsets[-1]) + np.repeat(word_offsets[:-1] + first - start - offsets[:-1], lengths)
        ids = words.take(source, mode="clip") if len(words) else np.zeros(len(source), dtype=np.int32)
        if start:  # texts read from their beginning begin with the start token (the place a word -1 would be)
            ids[offsets[:-1][(first == 0) & (lengths > 0)]] = START
        return Encoded(ids.astype(np.int32, copy=False), offsets, full_lengths.astype(np.int64))

    def decode(self, ids: Iterable[int], skip_padding: bool = True) -> str:
        """Words for ids; reserved and unknown ids read '?', as in the lecture."""
        return " ".join(
            self._words[i] if i >= len(RESERVED) else "?" for i in map(int, ids) if not (skip_padding and i == PAD)
        )

    def tokenizer_json(self) -> str:
        """The standard Hugging Face tokenizer.json document (the start token is its post-processor)."""
        return self.tokenizer.to_str(pretty=True)

    def to_json(self) -> str:
        """Settings and tokenizer in one document (caches and prepared folders keep it whole)."""
        return json.dumps({"settings": asdict(self.config), "tokenizer": json.loads(self.tokenizer.to_str())})

    def save(self, directory: Path) -> None:
        """Write DIR/tokenizer.json (the tokenizer) and DIR/encoder.json (settings naming it)."""
        directory = Path(directory)
        (directory / TOKENIZER_FILE).write_text(self.tokenizer_json())
        (directory / ENCODER_FILE).write_text(json.dumps({"settings": asdict(self.config), "tokenizer": TOKENIZER_FILE}))

    @classmethod
    def load(cls, directory: Path) -> TextEncoder:
        """The encoder save() wrote, or an older encoder.json holding its tokenizer whole."""
        directory = Path(directory)
        return cls.from_json((directory / ENCODER_FILE).read_text(), directory)

    @classmethod
    def from_json(cls, document: str, directory: Path | None = None) -> TextEncoder:
        """An encoder from to_json's document, or from save()'s encoder.json (its tokenizer file in `directory`)."""
        data = json.loads(document)
        config = EncoderConfig(**data["settings"])
        if not isinstance(data["tokenizer"], str):
            return cls(Tokenizer.from_str(json.dumps(data["tokenizer"])), config)
        if directory is None or data["tokenizer"] != TOKENIZER_FILE:
            raise ValueError(f"encoder.json names tokenizer {data['tokenizer']!r}; expected {TOKENIZER_FILE!r} beside it")
        path = Path(directory) / TOKENIZER_FILE
        if not path.is_file():
            raise ValueError(f"{path} is missing; encoder.json names it as its tokenizer")
        tokenizer = Tokenizer.from_file(str(path))
        if json.loads(tokenizer.to_str()).get("post_processor") != _processor_json(config):
            raise ValueError(f"{path}'s post-processor does not add the start token as encoder.json's "
                             f"start_token={config.start_token} says; the two files were edited apart")
        return cls(tokenizer, config)


def _start_processor(config: EncoderConfig) -> processors.PostProcessor | None:
    """The post-processor that puts the start token before each text's ids, when the config asks for one."""
    if not config.start_token:
        return None
    return processors.TemplateProcessing(single=f"{RESERVED[START]} $A", special_tokens=[(RESERVED[START], START)])


def _processor_json(config: EncoderConfig) -> dict | None:
    processor = _start_processor(config)
    if processor is None:
        return None
    probe = Tokenizer(models.WordLevel({RESERVED[UNKNOWN]: 0}, unk_token=RESERVED[UNKNOWN]))
    probe.post_processor = processor
    return json.loads(probe.to_str())["post_processor"]


def _sliceable(texts: Sequence[str]) -> Sequence[str]:
    """`texts` as a list or tuple (the bulk path slices them in chunks); any iterable is accepted."""
    return texts if isinstance(texts, (list, tuple)) else list(texts)


def truncate(sequence: Sequence[int], maxlen: int, side: str = "pre") -> Sequence[int]:
    """Keep maxlen items: the last ones for 'pre' (Keras's default), the first for 'post'."""
    if len(sequence) <= maxlen:
        return sequence
    return sequence[-maxlen:] if side == "pre" else sequence[:maxlen]


def pad_sequences(
    sequences: Sequence[Sequence[int]], maxlen: int, padding: str = "pre", truncating: str = "pre", value: int = PAD
) -> np.ndarray:
    """Keras's ``pad_sequences``: a (texts, maxlen) array, cut and padded on the sides given."""
    out = np.full((len(sequences), maxlen), value, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        kept = np.asarray(truncate(sequence, maxlen, truncating), dtype=np.int64)
        if len(kept):
            if padding == "pre":
                out[row, maxlen - len(kept) :] = kept
            else:
                out[row, : len(kept)] = kept
    return out
