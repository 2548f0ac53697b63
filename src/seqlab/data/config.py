"""The data stage's options, declared once: which data to read and how. The readers in
sources.py take them; the CLI surfaces their defaults. Nothing heavy is imported here, so
`seqlab --help` shows the defaults without loading numpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seqlab.errors import ConfigError

if TYPE_CHECKING:
    from seqlab.data.files import TableOptions

IMDB = "imdb"
PREPARED_MANIFEST = "manifest.json"  # written last by `seqlab data prepare`: its presence marks a finished folder
PREPARED_CHUNKS = ".chunks"  # the finished chunks of a preparation in progress


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

    def __post_init__(self) -> None:
        if not 0 <= self.test_split < 1:
            raise ConfigError(f"test_split must be in [0, 1); got {self.test_split}")

    @property
    def is_imdb(self) -> bool:
        return self.data == IMDB and not Path(self.data).exists()

    @property
    def is_prepared(self) -> bool:
        """A folder written by `seqlab data prepare` (finished or not)."""
        path = Path(self.data)
        return path.is_dir() and ((path / PREPARED_MANIFEST).is_file() or (path / PREPARED_CHUNKS).is_dir())

    @property
    def table_options(self) -> TableOptions:
        from seqlab.data.files import TableOptions  # with numpy: imported when the data is read, not to parse options

        return TableOptions(self.text_column, self.label_column, self.replace_invalid)

    def to_dict(self) -> dict:
        return asdict(self)
