"""Texts to words and word ids in bulk, the same words the saved Hugging Face tokenizer gives.

The tokenizer (encoder.py) is what a run saves and what serving and explanations use. Encoding
IMDb's 50,000 reviews through it took 10.6 s (fitting the vocabulary, then encoding); this module
gives the same vocabulary and ids in 3.5 s by working on all texts at once:

1. ``<br />`` tags become spaces (case-sensitive, as the tokenizer's normalizer does first);
2. all texts are joined into one UTF-8 byte string, one separator token between texts;
3. one ``bytes.translate`` turns every ASCII character that cannot be in a word into a space
   and folds ASCII case; ``bytes.split`` then cuts the words;
4. words are mapped to ids through a dict. A piece holding non-ASCII bytes (accents, curly
   quotes, dashes: a few thousand distinct ones in IMDb) is decoded and split character by
   character with the tokenizer's own rules, once per distinct piece.

The tokenizer's rules (Oniguruma's, in Unicode mode): a word is a run of letters, marks,
decimal digits, connector punctuation and apostrophes; case folds one character at a time (Σ
is always σ). tests/text/test_words.py checks them against the tokenizer on every character
Python's Unicode tables assign, on arbitrary text and on real reviews.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from typing import Sequence

import numpy as np

# <br\s*/?> where \s is Unicode White_Space (Oniguruma's \s), not Python's (which adds \x1c-\x1f).
_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
LINE_BREAK = re.compile(f"<br[{_SPACE}]*/?>")
CHUNK = 5_000  # texts split at once: bounds the memory the pieces take (~50 bytes each)
_SEPARATOR = b"\x00"  # stands between texts; a NUL inside a text is turned into a space first
_WORD_ASCII = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'")


def _ascii_table(lowercase: bool) -> bytes:
    """bytes.translate table: ASCII word characters kept (folded to lower case if asked), other
    ASCII characters to spaces, the separator and non-ASCII bytes (parts of UTF-8 sequences) kept."""
    table = bytearray(range(256))
    for byte in range(128):
        if byte not in _WORD_ASCII and bytes([byte]) != _SEPARATOR:
            table[byte] = ord(" ")
        elif lowercase and ord("A") <= byte <= ord("Z"):
            table[byte] = byte + 32
    return bytes(table)


_TABLES = {lowercase: _ascii_table(lowercase) for lowercase in (True, False)}


# Oniguruma's Unicode \w follows Unicode's word definition (UTS #18): Alphabetic, marks, decimal
# digits, connector punctuation. Python's \w differs both ways: it lacks marks and connector
# punctuation other than '_', and it has other numbers such as '½', which split words here.
_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Mn", "Mc", "Me", "Nd", "Pc"})
# Symbols with the Alphabetic property: circled and squared Latin letters (Ⓐ, 🄰).
_ALPHABETIC_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))


def _is_word_character(character: str) -> bool:
    """A character a word may hold: Oniguruma's Unicode \\w, or an apostrophe."""
    if character == "'" or unicodedata.category(character) in _WORD_CATEGORIES:
        return True
    return any(low <= ord(character) <= high for low, high in _ALPHABETIC_SYMBOLS)


def split_piece(piece: str, lowercase: bool) -> list[str]:
    """The words of `piece` by the tokenizer's rules, character by character (for pieces that
    hold non-ASCII characters; the bulk path splits the rest)."""
    if lowercase:
        piece = "".join(character.lower() for character in piece)  # one character at a time: Σ -> σ always
    words, current = [], []
    for character in piece:
        if _is_word_character(character):
            current.append(character)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def _joined_bytes(texts: Sequence[str], lowercase: bool) -> bytes:
    """All texts as one byte string of words, spaces and a separator after each text."""
    joined = " \x00 ".join(texts) + " \x00"
    if "<br" in joined:
        joined = LINE_BREAK.sub(" ", joined)
    data = joined.encode("utf-8", "surrogatepass")  # a lone surrogate is no word character: it splits
    if data.count(_SEPARATOR) != len(texts):  # NULs inside texts: they separate words, nothing more
        data = "".join(LINE_BREAK.sub(" ", text).replace("\x00", " ") + " \x00 " for text in texts).encode(
            "utf-8", "surrogatepass")
    return data.translate(_TABLES[lowercase])


class WordIds(dict):
    """Texts to word ids through a vocabulary; build once per vocabulary and reuse.

    As a dict: bytes piece -> id; >= 0 one word's id, -1 the separator between texts, < -1 a
    piece that is not exactly one word (its ids are in `expansions`). Pieces with non-ASCII
    bytes are worked out once and remembered (up to `MEMORY` of them: servers live long)."""

    MEMORY = 1_000_000

    def __init__(self, vocabulary: dict[str, int], unknown: int, lowercase: bool = True):
        super().__init__()
        self.vocabulary, self.unknown, self.lowercase = vocabulary, unknown, lowercase
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.clear()
        self.update((word.encode("utf-8"), index) for word, index in self.vocabulary.items() if word.isascii())
        self[_SEPARATOR] = -1
        self.expansions: list[list[int]] = []

    def __missing__(self, piece: bytes) -> int:
        if piece.isascii():
            return self.unknown  # a word the vocabulary lacks
        ids = [self.vocabulary.get(word, self.unknown)
               for word in split_piece(piece.decode("utf-8", "surrogatepass"), self.lowercase)]
        with self._lock:
            if len(ids) == 1:
                index = ids[0]
            else:
                self.expansions.append(ids)
                index = -1 - len(self.expansions)
            self[piece] = index
        return index

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Word ids of every text, flat, and offsets: text i is ids[offsets[i]:offsets[i + 1]]."""
        with self._lock:
            if len(self) > len(self.vocabulary) + self.MEMORY:
                self._reset()
        chunks = []
        for start in range(0, len(texts), CHUNK):
            pieces = _joined_bytes(texts[start : start + CHUNK], self.lowercase).split()
            chunks.append(np.fromiter(map(self.__getitem__, pieces), dtype=np.int32, count=len(pieces)))
        return self._texts(np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32), len(texts))

    def _texts(self, ids: np.ndarray, texts: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids with separators and markers -> (word ids, offsets of each text)."""
        if (ids < -1).any():
            ids = _expand(ids, self.expansions)
        ends = np.flatnonzero(ids == -1)  # the separator after each text
        offsets = np.zeros(texts + 1, dtype=np.int64)
        offsets[1:] = ends - np.arange(texts)  # words before each separator, the separators not counted
        return ids[ids != -1], offsets


def _expand(ids: np.ndarray, expansions: list[list[int]]) -> np.ndarray:
    """Replace each marker (< -1) by the ids it stands for (zero or several)."""
    markers = np.flatnonzero(ids < -1)
    sizes = np.ones(len(ids), dtype=np.int64)
    sizes[markers] = [len(expansions[-2 - ids[m]]) for m in markers]
    out = np.repeat(ids, sizes)
    starts = np.cumsum(sizes) - sizes
    for marker in markers:
        expansion = expansions[-2 - ids[marker]]
        out[starts[marker] : starts[marker] + len(expansion)] = expansion
    return out


class _NewCodes(dict):
    """bytes piece -> a code, new pieces numbered as they come."""

    def __missing__(self, piece: bytes) -> int:
        code = self[piece] = len(self)
        return code


class SplitTexts:
    """Texts split once into pieces, kept as codes of the distinct pieces: counting the words
    to fit a vocabulary, then encoding the same texts through it, costs one split."""

    def __init__(self, texts: Sequence[str], lowercase: bool = True):
        self.lowercase, self.texts = lowercase, len(texts)
        codes = _NewCodes()
        codes[_SEPARATOR] = 0
        chunks = []
        for start in range(0, len(texts), CHUNK):
            pieces = _joined_bytes(texts[start : start + CHUNK], lowercase).split()
            chunks.append(np.fromiter(map(codes.__getitem__, pieces), dtype=np.int32, count=len(pieces)))
        self.codes = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)  # (pieces,)
        self.pieces = list(codes)  # code -> piece

    def word_counts(self) -> dict[str, int]:
        """How often each word occurs."""
        words: Counter[str] = Counter()
        for piece, count in zip(self.pieces[1:], np.bincount(self.codes, minlength=len(self.pieces))[1:].tolist()):
            if piece.isascii():
                words[piece.decode("ascii")] += count
            else:
                for word in split_piece(piece.decode("utf-8", "surrogatepass"), self.lowercase):
                    words[word] += count
        return words

    def ids(self, word_ids: WordIds) -> tuple[np.ndarray, np.ndarray]:
        """Word ids of every text, as WordIds.encode gives them for the same texts."""
        table = np.fromiter(map(word_ids.__getitem__, self.pieces), dtype=np.int32, count=len(self.pieces))
        return word_ids._texts(table[self.codes], self.texts)


def most_frequent(counts: dict[str, int], size: int) -> list[str]:
    """The `size` most frequent words, ties broken by code point order (the WordLevel trainer's)."""
    return sorted(counts, key=lambda word: (-counts[word], word))[:size]
