"""Regular files of a .tar.gz, read in one pass: several times faster than `tarfile` for
archives of many small files (IMDb has 100,000), because the whole stream is inflated by
zlib at once and headers are parsed without per-member objects.

Handles ustar, GNU long names and pax path records; anything else is skipped. Checksums of
headers are verified, so corruption is reported rather than read as text.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Iterator

try:  # the same format as zlib's, inflated by Intel's ISA-L: IMDb's archive in 0.4 s instead of 1.1 s
    from isal import isal_zlib as inflater
except ImportError:  # pragma: no cover - a platform without isal's wheels
    inflater = zlib
CORRUPT = (zlib.error, inflater.error)  # what inflating damaged bytes raises

BLOCK = 512
_EMPTY = bytes(BLOCK)


class TarFormatError(ValueError):
    """The bytes are not a well-formed tar stream."""


def inflate(path: Path) -> bytes:
    """The decompressed content of a gzip file (all members)."""
    compressed = Path(path).read_bytes()
    out = []
    while compressed:
        decompressor = inflater.decompressobj(wbits=31)
        out.append(decompressor.decompress(compressed))
        out.append(decompressor.flush())
        if not decompressor.eof:
            raise TarFormatError("gzip stream ends early (the file is truncated)")
        compressed = decompressor.unused_data
    out = [part for part in out if part]
    return out[0] if len(out) == 1 else b"".join(out)  # one member: no 200 MB copy


def _number(field: bytes) -> int:
    field = field.split(b"\0", 1)[0].strip()
    return int(field, 8) if field else 0


def _checksum_ok(header: bytes) -> bool:
    field = header[148:156]
    return _number(field) == sum(header) - sum(field) + 8 * 32  # the field itself counts as 8 spaces


def iter_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, content) for every regular file, in archive order."""
    data = inflate(path)
    view = memoryview(data)
    position = 0
    long_name: str | None = None
    while position + BLOCK <= len(data):
        header = data[position : position + BLOCK]
        if header == _EMPTY:
            return  # end-of-archive marker
        if not _checksum_ok(header):
            raise TarFormatError(f"bad header checksum at byte {position}")
        size = _number(header[124:136])
        kind = header[156:157]
        start = position + BLOCK
        end = start + size
        if end > len(data):
            raise TarFormatError(f"member at byte {position} runs past the end of the archive")
        position = start + (size + BLOCK - 1) // BLOCK * BLOCK
        if kind == b"L":  # GNU long name for the next member
            long_name = bytes(view[start:end]).rstrip(b"\0").decode("utf-8", "replace")
            continue
        if kind in (b"x", b"g"):  # pax extended header: look for a path record
            for record in bytes(view[start:end]).split(b"\n"):
                _, _, keyword_value = record.partition(b" ")
                if keyword_value.startswith(b"path=") and kind == b"x":
                    long_name = keyword_value[5:].decode("utf-8", "replace")
            continue
        name = long_name
        long_name = None
        if name is None:
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
            if header[257:262] == b"ustar":
                prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
                if prefix:
                    name = f"{prefix}/{name}"
        if kind in (b"0", b"\0", b"7"):
            yield name, bytes(view[start:end])
