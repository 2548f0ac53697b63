"""The IMDb Large Movie Review Dataset (Maas et al., 2011): download, verify, read.

Reviews are read straight from the published ``aclImdb_v1.tar.gz``; nothing is extracted.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np

from seqlab.data import tarstream
from seqlab.data.corpus import Corpus, Split
from seqlab.errors import DataError
from seqlab.files import atomic_path, file_sha256

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
SIZE = 84_125_825
ARCHIVE_ENV = "SEQLAB_IMDB_ARCHIVE"
CACHE_ENV = "SEQLAB_CACHE"
LABEL_NAMES = ("negative", "positive")

_MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")


def cache_dir() -> Path:
    """Where downloads and encoded data live: $SEQLAB_CACHE, else ~/.cache/seqlab."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "seqlab")


def locate_archive(archive: str | Path | None = None, download: bool = True) -> Path:
    """The archive to read: the one given, else $SEQLAB_IMDB_ARCHIVE, else the cached
    download, else a fresh download (checksum verified)."""
    given = archive or os.environ.get(ARCHIVE_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            source = "--archive" if archive else f"${ARCHIVE_ENV}"
            raise DataError(
                f"IMDb archive not found at {path} (given by {source}). "
                f"Point it at a copy of aclImdb_v1.tar.gz, or leave it unset to download {URL}."
            )
        return path
    cached = cache_dir() / "aclImdb_v1.tar.gz"
    if cached.is_file():
        return cached
    if not download:
        raise DataError(_missing_message(cached, "downloading is switched off"))
    return download_archive(cached)


def _missing_message(cached: Path, reason: str) -> str:
    return (
        f"IMDb archive not available ({reason}). Looked for the cached download at {cached}. "
        f"Download {URL} yourself and pass it with --archive PATH or {ARCHIVE_ENV}=PATH."
    )


def download_archive(destination: Path, url: str = URL, sha256: str = SHA256) -> Path:
    """Download to a temporary file beside `destination`, verify the checksum, then rename.

    A failed or corrupt download never takes the final name.
    """
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    digest = hashlib.sha256()
    try:
        with atomic_path(destination) as temporary:
            with open(temporary, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or SIZE)
                columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
                with Progress(*columns, transient=True) as progress:
                    task = progress.add_task("downloading IMDb", total=total)
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        progress.advance(task, len(chunk))
            if digest.hexdigest() != sha256:
                raise DataError(
                    f"The download from {url} is corrupt: sha256 {digest.hexdigest()} is not the "
                    f"published {sha256}. It was discarded; run the command again to retry."
                )
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise DataError(_missing_message(destination, f"download failed: {error}")) from None
    return destination


def iter_reviews(path: Path, unlabelled: bool = False) -> Iterator[tuple[str, str, int, int, str]]:
    """(split, folder, review id, rating, text) for every review file, in archive order.

    The rating (1-4 in neg/, 7-10 in pos/, 0 in unsup/) comes from the name {id}_{rating}.txt.
    """
    parts: dict[str, tuple[str, ...]] = {}  # member name -> (split, folder, id, rating), for wanted members

    def wanted(name: str) -> bool:  # other members (unlabelled reviews unless asked for) are never copied
        if not unlabelled and "/unsup/" in name:
            return False
        match = _MEMBER.search(name)
        if match is not None:
            parts[name] = match.groups()
        return match is not None

    try:
        for name, content in tarstream.iter_files(path, wanted):
            split, kind, review_id, rating = parts[name]
            yield split, kind, int(review_id), int(rating), content.decode("utf-8", errors="replace")
    except (tarstream.TarFormatError, EOFError, OSError) + tarstream.CORRUPT as error:
        raise DataError(
            f"{path} is truncated or corrupt ({error}). Delete it and download "
            f"{URL} again, or pass another copy with --archive."
        ) from None


def read_archive(path: Path, unlabelled: bool = False) -> Corpus:
    """Read the labelled train/test reviews (and optionally the 50,000 unlabelled ones).

    Reviews are ordered by (label, review id) so that the corpus is the same whatever the
    order of files inside the archive.
    """
    found: dict[str, list[tuple[int, int, str]]] = {"train": [], "test": [], "unsup": []}
    for split, kind, review_id, _rating, text in iter_reviews(path, unlabelled):
        bucket = "unsup" if kind == "unsup" else split
        found[bucket].append((LABEL_NAMES.index("positive") if kind == "pos" else 0, review_id, text))
    if not found["train"] or not found["test"]:
        raise DataError(
            f"{path} holds no IMDb reviews (expected aclImdb/train/pos/*.txt and friends). "
            f"Is it the archive from {URL}?"
        )
    return Corpus(
        name="imdb",
        train=_to_split(found["train"]),
        test=_to_split(found["test"]),
        label_names=LABEL_NAMES,
        fingerprint=f"imdb:{file_sha256(path)}",
        unlabelled=[text for *_, text in sorted(found["unsup"])],
    )


def _to_split(rows: list[tuple[int, int, str]]) -> Split:
    rows.sort(key=lambda row: (row[0], row[1]))
    return Split([text for *_, text in rows], np.array([label for label, *_ in rows], dtype=np.int64))


def load(archive: str | Path | None = None, unlabelled: bool = False, download: bool = True) -> Corpus:
    """IMDb as a Corpus: 25,000 train and 25,000 test reviews, labels 0 negative / 1 positive."""
    return read_archive(locate_archive(archive, download=download), unlabelled=unlabelled)
