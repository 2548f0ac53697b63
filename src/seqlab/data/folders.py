"""Labelled texts from a folder with one subfolder per class, like aclImdb's ``pos/`` and ``neg/``.

    reviews/                      reviews/
      negative/  a.txt b.txt  or    train/  negative/ ...  positive/ ...
      positive/  c.txt ...          test/   negative/ ...  positive/ ...

Each ``.txt`` file is one text; the subfolder's name is its label. Files are read in sorted
order, so the result does not depend on the file system.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from seqlab.data.files import LabelledTexts, TableOptions
from seqlab.errors import DataError

TEXT_SUFFIX = ".txt"


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def has_split_folders(root: Path) -> bool:
    """Whether `root` holds train/ and test/ folders, each with a folder per class."""
    return (root / "train").is_dir() and (root / "test").is_dir()


def _text_files(root: Path) -> list[tuple[str, Path]]:
    folders = class_folders(root)
    if not folders:
        raise DataError(f"{root} has no class subfolders; put each class's .txt files in a subfolder named after "
                        f"the class (e.g. {root}/positive/1.txt)")
    found = [(folder.name, path) for folder in folders for path in sorted(folder.glob(f"*{TEXT_SUFFIX}"))]
    if not found:
        raise DataError(f"{root}: its subfolders ({', '.join(f.name for f in folders)}) hold no {TEXT_SUFFIX} files")
    return found


def read_folder(root: str | Path, options: TableOptions | None = None) -> LabelledTexts:
    """Every .txt file under `root`/CLASS/, labelled CLASS."""
    root, options = Path(root), options or TableOptions()
    if not root.is_dir():
        raise DataError(f"no folder at {root}")
    texts, files = [], []
    labels: list[str | int] = []  # LabelledTexts' raw labels
    for label, path in _text_files(root):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig", errors="replace" if options.replace_invalid else "strict")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise DataError(f"{path}, line {line}: bytes that are not UTF-8 ({error.reason}); re-save the file as "
                            "UTF-8, or pass --replace-invalid to read bad bytes as U+FFFD") from None
        if not text.strip():
            raise DataError(f"{path} is empty; remove it or write the text into it")
        texts.append(text)
        labels.append(label)
        files.append(str(path))
    return LabelledTexts(texts, labels, str(root), files=files)


def folder_fingerprint(root: Path) -> str:
    """sha256 over every text file's relative path and content: a changed file changes it."""
    digest = hashlib.sha256()
    files = sorted(root.rglob(f"*{TEXT_SUFFIX}"))
    if not files:
        raise DataError(f"{root} holds no {TEXT_SUFFIX} files; put each class's texts in a subfolder named after it")
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
