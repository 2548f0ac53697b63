"""Writing files so that a crash never leaves one half-written: temporary name, fsync, rename.

What is written gets the mode a plain open() would give (0644 under the usual umask 022), also
where the temporary file or a library's own writer (safetensors writes 0600) made it private."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from seqlab.errors import RunError
from seqlab.jsonfile import dumps


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _as_created(path: Path | str, directory: bool = False) -> None:
    """`path` with the mode the umask gives a new file (or directory)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed to `path`."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        with storage_errors(path):
            yield Path(temporary)
            _as_created(temporary)  # after writing: a writer may have replaced the file with its own
            with open(temporary, "rb+") as written:
                os.fsync(written.fileno())
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    """`data` as strict JSON (jsonfile.dumps: non-finite numbers as null), written atomically."""
    write_text(path, dumps(data, indent=2))


@contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; on success it replaces `path` whole.

    Readers see the old directory or the new one, never a mix or a half-written one.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.staging-"))
    try:
        with storage_errors(path):
            yield staging
            for folder, folders, names in os.walk(staging):
                _as_created(folder, directory=True)
                for name in names:
                    _as_created(os.path.join(folder, name))
            if path.exists():
                retired = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
                os.replace(path, retired / "run")
                os.replace(staging, path)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no room: the disk, a quota or a file size limit
_REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """A write to `path` that fails for want of room or permission ends in one RunError naming it
    (the atomic writers have removed their temporaries by then: nothing half-written is left)."""
    try:
        yield
    except Exception as error:
        code = error.errno if isinstance(error, OSError) else None
        found = re.search(r"os error (\d+)", str(error))  # safetensors' writer reports the OS error in its text
        code = code or (int(found.group(1)) if found else None)
        if code in _FULL:
            raise RunError(f"cannot write {path}: {os.strerror(code)} (no room left on the disk, in your quota or "
                           "under a file size limit); nothing there was changed. Free some space, or write elsewhere "
                           "with --out") from None
        if code in _REFUSED:
            raise RunError(f"cannot write {path}: {os.strerror(code)}; nothing there was changed. Make the folder "
                           "writable, or write elsewhere with --out") from None
        raise


def check_writable(directory: Path, what: str, fix: str) -> None:
    """Fail fast: `directory` (made if missing) takes files, tried by creating and removing one."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".seqlab-writable-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise RunError(f"{what} {directory} is not writable ({error.strerror}); {fix}") from None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB pieces (archives can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
