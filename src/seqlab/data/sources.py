"""One way to name the data: ``--data imdb|FILE|FOLDER|PREPARED`` and an optional ``--test-data``,
or, from Python, the data itself (texts and labels, a DataFrame, a `datasets` dataset: data/memory.py).

Without a test set, a stratified share of the data is held out for testing. Labels may be
names or whole numbers; classes are numbered in sorted order of the training labels, and
the names are kept in the run, so predictions speak the data's own labels. A folder written
by `seqlab data prepare` (found by its manifest) holds token ids instead of texts; the
pipeline's `prepare` opens it memory-mapped.

`fingerprint` is the one naming scheme of the data: caches, resumed runs and prepared
folders all record it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seqlab.data import imdb
from seqlab.data.config import PREPARED_MANIFEST, DataSource
from seqlab.data.corpus import Corpus, Split, balanced_sample, subset_fingerprint
from seqlab.data.files import LabelledTexts, TableOptions, read_table
from seqlab.data.folders import folder_fingerprint, has_split_folders, read_folder
from seqlab.errors import ConfigError, DataError
from seqlab.files import file_sha256

SOURCE_FORMAT = 1
SUBSET_SEED = 0  # every --train-size/--test-size subset is drawn with this seed, in training and evaluation alike


def _read(path: Path, options: TableOptions) -> LabelledTexts:
    if path.is_dir() and options.format is not None:
        raise ConfigError(f"--format names the format of a file; {path} is a folder of .txt files: drop --format")
    return read_folder(path, options) if path.is_dir() else read_table(path, options)


def _refuse_format_for_imdb(source: DataSource) -> None:
    if source.format is not None:
        raise ConfigError("--format names the format of a --data file; IMDb is read from its archive: drop --format")


def _content_hash(path: Path) -> str:
    if path.is_dir():
        return folder_fingerprint(path)
    if not path.is_file():
        raise DataError(f"no data at {path}; give --data a CSV/TSV/JSONL/Parquet file, a folder with a subfolder "
                        "per class, or 'imdb'")
    return file_sha256(path)


def fingerprint(source: DataSource, train_size: int | None = None, test_size: int | None = None) -> str:
    """Identifies the corpus `load_corpus(source, train_size, test_size)` yields: file contents (not names
    or dates), every reading option and the subset drawn."""
    return subset_fingerprint(_source_fingerprint(source), train_size, test_size, SUBSET_SEED)


def _source_fingerprint(source: DataSource) -> str:
    if source.is_imdb:
        return f"imdb:{file_sha256(imdb.locate_archive(source.archive))}"
    if source.is_prepared:  # its manifest records the fingerprint of what it was made from, the encoder and sizes
        manifest = Path(source.data) / PREPARED_MANIFEST
        if not manifest.is_file():
            raise DataError(f"{source.data} is an unfinished preparation; rerun `seqlab data prepare` to complete it")
        return f"prepared:{file_sha256(manifest)}"
    material = {k: v for k, v in source.to_dict().items() if k not in ("data", "test_data", "archive", "format")}
    if source.format is not None:  # left out when unset, so caches made before the option stay valid
        material["data_format"] = source.format
    material["format"] = SOURCE_FORMAT
    if source.in_memory:
        from seqlab.data.memory import TEST, content_hash

        digests = content_hash(source)
        material["data"], material["test_data"] = f"memory:{digests['train']}", digests.get(TEST)
    else:
        material["data"] = _content_hash(Path(source.data))
        material["test_data"] = _content_hash(Path(source.test_data)) if source.test_data else None
    if material["test_data"]:
        material.pop("test_split"), material.pop("split_seed")
    return "data:" + json.dumps(material, sort_keys=True)


def load_corpus(source: DataSource, train_size: int | None = None, test_size: int | None = None) -> Corpus:
    """The corpus `source` names, checked: at least two classes, no unknown test labels; with
    `train_size`/`test_size`, the class-balanced subset every command draws for those sizes."""
    corpus = _load_corpus(source)
    if train_size is None and test_size is None:
        return corpus
    return corpus.subset(train_size, test_size, seed=SUBSET_SEED)


def _load_corpus(source: DataSource) -> Corpus:
    if source.is_prepared:
        raise DataError(f"{source.data} is a prepared corpus: it holds token ids, not the texts this needs; "
                        "give the data it was prepared from")
    if source.is_imdb:
        if source.test_data:
            raise ConfigError("IMDb comes with its own test reviews; drop --test-data or give --data a file")
        _refuse_format_for_imdb(source)
        return imdb.load(source.archive)
    train, test = _read_source(source)
    names = label_names(train)
    if test is not None:
        train_split, test_split = to_split(train, names), to_split(test, names, role="test")
    else:
        if source.test_split == 0:
            raise ConfigError("no test set: give --test-data, or a --test-split above 0 to hold out part of --data")
        whole = to_split(train, names)
        train_split, test_split = stratified_split(whole, source.test_split, source.split_seed)
    name = source.memory_kind if source.in_memory else Path(source.data).name.split(".")[0]
    return Corpus(name=name or "data", train=train_split, test=test_split, label_names=names,
                  fingerprint=fingerprint(source))


def _read_source(source: DataSource) -> tuple[LabelledTexts, LabelledTexts | None]:
    """The training texts and, where the source has them, its own test texts."""
    if source.in_memory:
        from seqlab.data.memory import TEST, TRAIN, read_memory

        splits = read_memory(source)
        return splits[TRAIN], splits.get(TEST)
    path = Path(source.data)
    options = source.table_options
    test_path = Path(source.test_data) if source.test_data else None
    if test_path is None and path.is_dir() and has_split_folders(path):
        path, test_path = path / "train", path / "test"
    return _read(path, options), _read(test_path, options) if test_path is not None else None


def label_names(table: LabelledTexts) -> tuple[str, ...]:
    """Class names in order: whole numbers numerically, names alphabetically."""
    classes = sorted(set(table.labels))
    if len(classes) < 2:
        raise DataError(f"{table.origin} has a single class ({classes[0]!r}) in its labels; a classifier needs "
                        "texts of at least two classes")
    return tuple(str(c) for c in classes)


def to_split(table: LabelledTexts, names: tuple[str, ...], role: str = "training") -> Split:
    index = {name: number for number, name in enumerate(names)}
    labels = np.empty(len(table), dtype=np.int64)
    for row, label in enumerate(table.labels):
        number = index.get(str(label))
        if number is None:
            raise DataError(f"{table.locate(row)}: label {label!r} never occurs in the training data "
                            f"(its classes: {', '.join(names)}); a model cannot learn a class it has not seen")
        labels[row] = number
    return Split(table.texts, labels)


def stratified_split(split: Split, share: float, seed: int) -> tuple[Split, Split]:
    """Hold out `share` of every class (at least one text of each class with two or more)."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        count = int(round(len(members) * share))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        held.append(rng.permutation(members)[:count])
    test = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(split)), test)
    return split.take(train), split.take(test)


def load_evaluation_split(source: DataSource, names: tuple[str, ...], test_size: int | None = None) -> Split:
    """Texts to test a trained model on, labelled with the model's classes `names`: IMDb's test
    reviews, else every row of --test-data (or of --data; a train/test folder gives its test/).

    `test_size` draws the class-balanced subset that training with the same `test_size` held out."""
    split = _evaluation_split(source, names)
    indices = balanced_sample(split.labels, test_size, SUBSET_SEED, "test")
    return split if indices is None else split.take(indices)


def _evaluation_split(source: DataSource, names: tuple[str, ...]) -> Split:
    if source.is_prepared:
        raise DataError(f"{source.data} is a prepared corpus (token ids, not texts); evaluate on the data it was "
                        "prepared from")
    if source.is_imdb:
        _refuse_format_for_imdb(source)
        corpus = imdb.load(source.archive)
        if tuple(corpus.label_names) != tuple(names):
            raise DataError(f"the run's classes ({', '.join(names)}) are not IMDb's ({', '.join(corpus.label_names)}); "
                            "evaluate it with --data on data labelled like its training data")
        return corpus.test
    if source.in_memory:
        train, test = _read_source(source)
        return to_split(test or train, names, role="test")
    path = Path(source.test_data or source.data)
    if path.is_dir() and has_split_folders(path):
        path = path / "test"
    return to_split(_read(path, source.table_options), names, role="test")
