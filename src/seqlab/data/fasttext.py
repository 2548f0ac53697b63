"""fastText's supervised format: one text a line, its class first as ``__label__NAME``.

    __label__positive A wonderful film, moving and well acted.
    __label__negative Dull from start to end.

Read as a stream like the other tables (data/files.py hands over the decoded lines). A ``.ft`` file is this format, and so is a
``.txt`` file whose first line starts with ``__label__``; ``--format fasttext`` says so for any name.
A line with two labels is multi-label data, which seqlab's classifiers do not learn: it is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from seqlab.errors import DataError

PREFIX = "__label__"
SNIFFED = 4096  # bytes of a .txt file read to tell whether it is in this format


def looks_like_fasttext(path: Path) -> bool:
    """Whether the first non-blank line of `path` starts with a ``__label__`` token."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFFED)
    first = next((line for line in head.splitlines() if line.strip()), b"")
    return first.lstrip().startswith(PREFIX.encode())


def fasttext_rows(path: Path, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str, str]]:
    """(line, text, label) of every non-blank line of `lines` ((number, text) of each line of `path`)."""
    for number, line in lines:
        words = line.split()
        if not words:
            continue
        labels = [word for word in words if word.startswith(PREFIX)]
        if not words[0].startswith(PREFIX):
            raise DataError(f"{path}, line {number}: no {PREFIX} label at the start of the line; fastText lines read "
                            f"'{PREFIX}CLASS the text'")
        if len(labels) > 1:
            raise DataError(f"{path}, line {number}: {len(labels)} labels ({', '.join(labels[:3])}); multi-label data "
                            "is not supported, give each line one label")
        text = line.lstrip()[len(words[0]):].strip()
        yield number, text, words[0][len(PREFIX):]
