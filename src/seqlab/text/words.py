"""Texts to words and word ids in bulk, the same words the saved Hugging Face tokenizer gives.

The tokenizer (encoder.py) is what a run saves and what serving and explanations use. Encoding
a whole corpus text by text through it is slow; this module gives the same vocabulary and ids
several times faster (docs/performance.md, "Data preparation") by working on all texts at once,
with a helper process per core splitting a share of large inputs (SplitTexts):

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

import itertools
import os
import re
import subprocess
import sys
import threading
import unicodedata
from typing import IO, BinaryIO, Sequence

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
    """Replace each marker (< -1) by the ids it stands for (zero or several). Markers are rare
    (~2,000 in IMDb's 6 million words), so the runs between them are copied whole."""
    parts, previous = [], 0
    for marker in np.flatnonzero(ids < -1).tolist():
        parts.append(ids[previous:marker])
        parts.append(np.asarray(expansions[-2 - ids[marker]], dtype=ids.dtype))
        previous = marker + 1
    parts.append(ids[previous:])
    return np.concatenate(parts)


class _NewCodes(dict):
    """bytes piece -> a code, new pieces numbered as they come."""

    def __missing__(self, piece: bytes) -> int:
        code = self[piece] = len(self)
        return code


def _piece_codes(texts: Sequence[str], lowercase: bool, codes: _NewCodes) -> np.ndarray:
    """The code of every piece of `texts`, in order, a separator (code 0) after each text."""
    chunks = []
    for start in range(0, len(texts), CHUNK):
        pieces = _joined_bytes(texts[start : start + CHUNK], lowercase).split()
        chunks.append(np.fromiter(map(codes.__getitem__, pieces), dtype=np.int32, count=len(pieces)))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)


def _new_codes() -> _NewCodes:
    codes = _NewCodes()
    codes[_SEPARATOR] = 0
    return codes


class SplitTexts:
    """Texts split once into pieces, kept as codes of the distinct pieces: counting the words
    to fit a vocabulary, then encoding the same texts through it, costs one split.

    Splitting is Python's work on every word and holds the GIL, so for many texts shares of
    them go to helper processes (``processes``: None picks one per core for large inputs, 1
    splits here alone). The codes are the same either way: pieces are numbered in order of
    first appearance across all texts."""

    def __init__(self, texts: Sequence[str], lowercase: bool = True, processes: int | None = None):
        self.lowercase, self.texts = lowercase, len(texts)
        processes = _processes_for(texts) if processes is None else max(1, min(processes, len(texts)))
        # This process's share is a tenth larger than a helper's: a helper spends time starting and sending.
        weights = [0, 11 if processes > 1 else 10, *[10] * (processes - 1)]
        bounds = [len(texts) * weight // sum(weights) for weight in itertools.accumulate(weights)]
        helpers = [_Helper(texts[start:end], lowercase) for start, end in zip(bounds[1:-1], bounds[2:])]
        codes = _new_codes()
        try:
            chunks = [_piece_codes(texts[: bounds[1]], lowercase, codes)]
            for helper in helpers:  # their pieces renumbered into this process's codes, in order
                result = helper.result()
                if result is None:  # the helper failed: split its share here
                    chunks.append(_piece_codes(helper.texts, lowercase, codes))
                    continue
                pieces, their_codes = result
                chunks.append(np.fromiter(map(codes.__getitem__, pieces), dtype=np.int32, count=len(pieces))[their_codes])
        finally:
            for helper in helpers:
                helper.stop()  # no helper outlives an interruption here
        self.codes = np.concatenate(chunks)  # (pieces,)
        self.pieces = list(codes)  # code -> piece

    def word_counts(self, first: int | None = None) -> dict[str, int]:
        """How often each word occurs in the first `first` texts (default: all)."""
        codes = self.codes
        if first is not None and first < self.texts:
            codes = codes[: np.flatnonzero(codes == 0)[first - 1] + 1] if first > 0 else codes[:0]
        counts = np.bincount(codes, minlength=len(self.pieces))  # (pieces,)
        present = np.flatnonzero(counts[1:]) + 1  # codes of the pieces these texts hold, the separator left out
        ascii_pieces: list[int] = []
        other_pieces: list[int] = []
        for code in present.tolist():
            (ascii_pieces if self.pieces[code].isascii() else other_pieces).append(code)
        # An ASCII piece is exactly one word, a different one for each piece.
        words = dict(zip(b"\n".join(self.pieces[code] for code in ascii_pieces).decode("ascii").split("\n")
                         if ascii_pieces else [], counts[ascii_pieces].tolist()))
        for code in other_pieces:
            for word in split_piece(self.pieces[code].decode("utf-8", "surrogatepass"), self.lowercase):
                words[word] = words.get(word, 0) + int(counts[code])
        return words

    def ids(self, word_ids: WordIds) -> tuple[np.ndarray, np.ndarray]:
        """Word ids of every text, as WordIds.encode gives them for the same texts."""
        table = np.fromiter(map(word_ids.__getitem__, self.pieces), dtype=np.int32, count=len(self.pieces))
        return word_ids._texts(table[self.codes], self.texts)


PARALLEL_SHARE = 10_000_000  # characters a helper process must get to pay for its start-up
MOST_PROCESSES = 8


def _processes_for(texts: Sequence[str]) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or len(texts) < 2:
        return 1
    return max(1, min(cores, MOST_PROCESSES, sum(map(len, texts)) // PARALLEL_SHARE))


# The helper runs this file alone (not the seqlab package, which would import PyTorch: seconds).
_HELPER_MAIN = """import importlib.util, sys
spec = importlib.util.spec_from_file_location("seqlab_words_helper", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.serve_split(sys.stdin.buffer, sys.stdout.buffer)
"""


class _Helper:
    """A Python process splitting a share of the texts while this one splits its own. Texts go
    to it and pieces come back as plain bytes (length-prefixed frames), not pickles."""

    def __init__(self, texts: Sequence[str], lowercase: bool):
        self.texts = texts
        try:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-c", _HELPER_MAIN, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL)
        except OSError:
            self.process = None
            return
        encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        frames = [b"1" if lowercase else b"0", lengths.tobytes(), b"".join(encoded)]
        self.sender = threading.Thread(target=self._send, args=(frames,), daemon=True)  # writing releases the GIL
        self.sender.start()

    def _send(self, frames: list[bytes]) -> None:
        assert self.process is not None and self.process.stdin is not None  # started with stdin=PIPE
        try:
            with self.process.stdin:
                for frame in frames:
                    _write_frame(self.process.stdin, frame)
        except OSError:
            pass  # the helper died; result() sees it

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def result(self) -> tuple[list[bytes], np.ndarray] | None:
        """(its pieces in order of first appearance, the code of each piece), or None if it failed."""
        if self.process is None:
            return None
        assert self.process.stdout is not None  # started with stdout=PIPE
        try:
            pieces = _read_frame(self.process.stdout).split(b" ")  # pieces hold no ASCII space
            codes = np.frombuffer(_read_frame(self.process.stdout), dtype=np.int32)
            if len(codes) and (codes.min() < 0 or codes.max() >= len(pieces)) or (codes == 0).sum() != len(self.texts):
                raise ValueError("the helper's reply does not fit its texts")
        except (OSError, ValueError):  # the helper failed: its share is split here
            self.process.kill()
            return None
        finally:
            self.sender.join()
            self.process.stdout.close()
            self.process.wait()
        return pieces, codes


def _write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(len(data).to_bytes(8, "little"))
    stream.write(data)


def _read_frame(stream: IO[bytes]) -> bytes:
    header = stream.read(8)
    size = int.from_bytes(header, "little") if len(header) == 8 else -1
    data = stream.read(size) if size >= 0 else b""
    if len(data) != size:
        raise ValueError("the stream ends early")
    return data


def serve_split(requests: BinaryIO, replies: BinaryIO) -> None:
    """The helper's side: texts in, (pieces, codes) out."""
    lowercase = _read_frame(requests) == b"1"
    ends = np.cumsum(np.frombuffer(_read_frame(requests), dtype=np.int64)).tolist()
    data = _read_frame(requests)
    texts = [data[start:end].decode("utf-8", "surrogatepass") for start, end in zip([0, *ends], ends)]
    codes = _new_codes()
    array = _piece_codes(texts, lowercase, codes)
    _write_frame(replies, b" ".join(codes))
    _write_frame(replies, array.astype(np.int32, copy=False).tobytes())
    replies.flush()


def most_frequent(counts: dict[str, int], size: int) -> list[str]:
    """The `size` most frequent words, ties broken by code point order (the WordLevel trainer's)."""
    if size <= 0:
        return []
    if size < len(counts):  # only words as frequent as the size-th need sorting
        frequencies = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        least = np.partition(frequencies, len(counts) - size)[len(counts) - size]
        counts = {word: count for word, count in counts.items() if count >= least}
    return sorted(counts, key=lambda word: (-counts[word], word))[:size]
