"""The data stage's options, declared once: which data to read and how. The readers in
sources.py take them; the CLI surfaces their defaults. Nothing heavy is imported here, so
`seqlab --help` shows the defaults without loading numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqlab.errors import ConfigError

if TYPE_CHECKING:
    from seqlab.data.files import TableOptions

IMDB = "imdb"
PREPARED_MANIFEST = "manifest.json"  # written last by `seqlab data prepare`: its presence marks a finished folder
PREPARED_CHUNKS = ".chunks"  # the finished chunks of a preparation in progress
FORMATS = ("csv", "tsv", "jsonl", "parquet", "fasttext")  # what `format` may name
IN_MEMORY = ("texts", "labels", "frame", "dataset")  # the fields that hold data rather than name it


@dataclass(frozen=True)
class DataSource:
    data: str = IMDB  # 'imdb', a CSV/TSV/JSONL/Parquet file, a folder with a subfolder per class, or a prepared folder
    test_data: str | None = None  # a separate test set in the same form; without one, a stratified share of data
    text_column: str = "text"  # column (JSON key) with the texts
    label_column: str = "label"  # column (JSON key) with the labels: class names or whole numbers
    replace_invalid: bool = False  # read bytes that are not UTF-8 as U+FFFD instead of stopping
    test_split: float = 0.2  # share of each class held out for testing when there is no test_data
    split_seed: int = 0  # seeds that held-out share
    archive: str | None = None  # IMDb only: a local aclImdb_v1.tar.gz
    format: str | None = None  # a file's format (csv, tsv, jsonl, parquet, fasttext); None: told by its name and content
    # In-memory data (Python API), instead of `data`; fingerprinted by content like files:
    texts: list[str] | None = field(default=None, compare=False, repr=False)  # texts, with `labels` beside them
    labels: list[str | int] | None = field(default=None, compare=False, repr=False)  # one class name or number per text
    frame: Any = field(default=None, compare=False, repr=False)  # a pandas DataFrame with text_column and label_column
    dataset: Any = field(default=None, compare=False, repr=False)  # a datasets.Dataset, or a DatasetDict (its train/test splits)

    def __post_init__(self) -> None:
        if not 0 <= self.test_split < 1:
            raise ConfigError(f"test_split must be in [0, 1); got {self.test_split}")
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"unknown data format {self.format!r}; choose one of {', '.join(FORMATS)}")
        given = [name for name in ("texts", "frame", "dataset") if getattr(self, name) is not None]
        if (self.texts is None) != (self.labels is None):
            raise ConfigError("in-memory data needs both texts= and labels= (one label per text)")
        if len(given) > 1:
            raise ConfigError(f"give one in-memory source, not {' and '.join(f'{name}=' for name in given)}")
        if given and (self.data != IMDB or self.test_data or self.format or self.archive):
            named = [f"{name}=" for name in ("data", "test_data", "format", "archive")
                     if getattr(self, name) != getattr(DataSource, name)]
            raise ConfigError(f"{given[0]}= holds the data itself; drop {', '.join(named)} (a test set comes from "
                              "test_split, or from a DatasetDict's 'test' split)")

    @property
    def in_memory(self) -> bool:
        """Texts handed over in Python (lists, a DataFrame, a datasets.Dataset) rather than named by `data`."""
        return self.memory_kind is not None

    @property
    def memory_kind(self) -> str | None:
        """'texts', 'frame' or 'dataset': which in-memory source this is, if any."""
        return next((name for name in ("texts", "frame", "dataset") if getattr(self, name) is not None), None)

    @property
    def is_imdb(self) -> bool:
        return not self.in_memory and self.data == IMDB and not Path(self.data).exists()

    @property
    def is_prepared(self) -> bool:
        """A folder written by `seqlab data prepare` (finished or not)."""
        path = Path(self.data)
        return (not self.in_memory and path.is_dir()
                and ((path / PREPARED_MANIFEST).is_file() or (path / PREPARED_CHUNKS).is_dir()))

    @property
    def table_options(self) -> TableOptions:
        from seqlab.data.files import TableOptions  # with numpy: imported when the data is read, not to parse options

        return TableOptions(self.text_column, self.label_column, self.replace_invalid, self.format)

    def to_dict(self) -> dict:
        """The options as JSON (recipes, fingerprints); in-memory data is not part of it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in IN_MEMORY}
