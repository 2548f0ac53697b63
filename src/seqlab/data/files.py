"""Labelled texts from tables: CSV, TSV, JSON Lines, Parquet and fastText's format, read as a stream.

Rows are read one at a time (Parquet: one record batch at a time), so a file is never held
in memory whole; only the texts and labels it yields are kept. Every error names the file
and the line (Parquet: the row) and says how to fix it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from seqlab.errors import DataError
from seqlab.jsonfile import loads_line

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet", ".ft": "fasttext"}
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_HOW_TO_REPLACE = "re-save the file as UTF-8, or pass --replace-invalid to read bad bytes as U+FFFD"

csv.field_size_limit(2**31 - 1)  # reviews can be longer than csv's default limit of 131,072 characters


@dataclass(frozen=True)
class TableOptions:
    text_column: str = "text"  # column (or JSON key) holding the texts
    label_column: str = "label"  # column (or JSON key) holding the labels: names or whole numbers
    replace_invalid: bool = False  # read bytes that are not UTF-8 as U+FFFD instead of stopping
    format: str | None = None  # csv, tsv, jsonl, parquet or fasttext; None: told by the name (and a .txt's content)


@dataclass
class LabelledTexts:
    """Texts with raw labels (names or whole numbers) and where each came from, for error messages."""

    texts: list[str]
    labels: list[str | int]
    origin: str  # the file or folder read
    lines: np.ndarray | None = None  # (rows,) line (Parquet: row) of each text in `origin`
    files: list[str] | None = None  # or the file each text came from (folder sources)
    unit: str = "line"

    def __len__(self) -> int:
        return len(self.texts)

    def locate(self, index: int) -> str:
        if self.files is not None:
            return self.files[index]
        assert self.lines is not None  # a table's texts keep their lines
        return f"{self.origin}, {self.unit} {int(self.lines[index])}"


def table_format(path: Path, given: str | None = None) -> str:
    """`given`, else the format the name says (a .txt file: fastText's if its first line starts with __label__)."""
    if given is not None:
        return given
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in FORMATS:
            return FORMATS[suffix]
    if suffixes and suffixes[-1] == ".txt" and path.is_file():
        from seqlab.data.fasttext import looks_like_fasttext

        if looks_like_fasttext(path):
            return "fasttext"
    raise DataError(f"{path}: cannot tell the format from the name; name it .csv, .tsv, .jsonl, .parquet or .ft "
                    "(fastText's __label__ lines), pass --format, or give a folder with one subfolder of .txt files "
                    "per class")


def read_table(path: str | Path, options: TableOptions | None = None) -> LabelledTexts:
    """Every row's text and label; raises DataError naming the file and line of the first problem."""
    path, options = Path(path), options or TableOptions()
    if not path.is_file():
        raise DataError(f"no data file at {path}; give --data a CSV/TSV/JSONL/Parquet file, a folder, or 'imdb'")
    kind = table_format(path, options.format)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; " + ("it needs one '__label__CLASS text' line per text" if kind == "fasttext"
                        else f"it needs a header row with columns {options.text_column!r} and "
                             f"{options.label_column!r}, then one row per text"))
    collector = _Collector(path, options)
    rows: Iterator[tuple[int, object, object]]
    if kind == "fasttext":
        from seqlab.data.fasttext import fasttext_rows

        rows = fasttext_rows(path, decoded_lines(path, options))
    elif kind in ("csv", "tsv"):
        rows = _csv_rows(path, options, "\t" if kind == "tsv" else ",")
    elif kind == "jsonl":
        rows = _jsonl_rows(path, options)
    else:
        rows = _parquet_rows(path, options)
        collector.unit = "row"
    for line, text, label in rows:
        collector.add(line, text, label)
    return collector.result()


class _Collector:
    """Checks each row as it arrives and keeps what training needs."""

    def __init__(self, path: Path, options: TableOptions):
        self.path, self.options, self.unit = path, options, "line"
        self.texts: list[str] = []
        self.labels: list[str | int] = []
        self.lines = array("q")  # 8 bytes a row rather than a Python int's 36
        self.distinct: dict[str | int, str | int] = {}  # one object per distinct label, not one per row
        self.first_of_kind: dict[type, tuple[int, str | int]] = {}

    def where(self, line: int) -> str:
        return f"{self.path}, {self.unit} {line}"

    def add(self, line: int, text, label) -> None:
        if text is None or (isinstance(text, str) and not text.strip()):
            raise DataError(f"{self.where(line)}: the text in column {self.options.text_column!r} is empty; "
                            "fill it in or remove the row")
        if not isinstance(text, str):
            raise DataError(f"{self.where(line)}: the text in column {self.options.text_column!r} is "
                            f"{type(text).__name__} {text!r}, not a string")
        value = self._label(line, label)
        kind = type(value)
        self.first_of_kind.setdefault(kind, (line, value))
        if len(self.first_of_kind) > 1:
            (number_line, number), (name_line, name) = self.first_of_kind[int], self.first_of_kind[str]
            raise DataError(
                f"{self.where(max(number_line, name_line))}: the label column {self.options.label_column!r} mixes whole "
                f"numbers ({number!r} on {self.unit} {number_line}) and names ({name!r} on {self.unit} {name_line}); "
                "use one kind of label throughout")
        self.texts.append(text)
        self.labels.append(self.distinct.setdefault(value, value))
        self.lines.append(line)

    def _label(self, line: int, label) -> str | int:
        column = self.options.label_column
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"{self.where(line)}: the label in column {column!r} is missing; every row needs one")
        if isinstance(label, bool):
            raise DataError(f"{self.where(line)}: label {label!r} is a boolean; write labels as names or whole numbers")
        if isinstance(label, (int, np.integer)):
            return int(label)
        if isinstance(label, float):
            if label.is_integer():
                return int(label)
            raise DataError(f"{self.where(line)}: label {label!r} is not a whole number; "
                            "labels are class names or whole numbers")
        if isinstance(label, str):
            label = label.strip()
            return int(label) if _WHOLE_NUMBER.fullmatch(label) else label
        raise DataError(f"{self.where(line)}: label {label!r} is a {type(label).__name__}; "
                        "labels are class names or whole numbers")

    def result(self) -> LabelledTexts:
        if not self.texts:
            raise DataError(f"{self.path} has a header but no rows; add one row per labelled text")
        return LabelledTexts(self.texts, self.labels, str(self.path), np.frombuffer(self.lines, dtype=np.int64),
                             unit=self.unit)


def _missing_columns(path: Path, header: list[str], options: TableOptions, unit: str = "header") -> None:
    wanted = (options.text_column, options.label_column)
    missing = [name for name in wanted if name not in header]
    if missing:
        raise DataError(
            f"{path}: the {unit} has no column {' or '.join(map(repr, missing))}; it has {', '.join(map(repr, header)) or 'none'}. "
            "Name the columns with --text-column and --label-column")


def _first_bad_line(path: Path) -> tuple[int, UnicodeDecodeError]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, error
    raise AssertionError("no undecodable line found")  # only called after a decode error


def _decode_error(path: Path) -> DataError:
    line, error = _first_bad_line(path)
    return DataError(f"{path}, line {line}: bytes that are not UTF-8 ({error.reason} at byte {error.start} of the "
                     f"line); {_HOW_TO_REPLACE}")


def _csv_rows(path: Path, options: TableOptions, delimiter: str) -> Iterator[tuple[int, str, str]]:
    errors = "replace" if options.replace_invalid else "strict"
    try:
        with open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors=errors, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path} is empty; it needs a header row")
            header = [name.strip() for name in header]
            _missing_columns(path, header, options)
            text_at, label_at = header.index(options.text_column), header.index(options.label_column)
            needed = max(text_at, label_at) + 1
            line = reader.line_num
            for row in reader:
                start, line = line + 1, reader.line_num
                if not row:
                    continue
                if len(row) < needed:
                    raise DataError(f"{path}, line {start}: {len(row)} field(s) where the header has {len(header)}; "
                                    f"check the quoting{' (is it really tab-separated?)' if delimiter == chr(9) else ''}")
                yield start, row[text_at], row[label_at]
    except UnicodeDecodeError:
        raise _decode_error(path) from None
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: not valid {'TSV' if delimiter == chr(9) else 'CSV'} ({error})") from None


def decoded_lines(path: Path, options: TableOptions) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, decoded as UTF-8 (a first line's BOM dropped)."""
    errors = "replace" if options.replace_invalid else "strict"
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8", errors=errors)
            except UnicodeDecodeError as error:
                raise DataError(f"{path}, line {number}: bytes that are not UTF-8 ({error.reason} at byte "
                                f"{error.start} of the line); {_HOW_TO_REPLACE}") from None


def _jsonl_rows(path: Path, options: TableOptions) -> Iterator[tuple[int, object, object]]:
    for number, line in decoded_lines(path, options):
        if not line.strip():
            continue
        try:
            record = loads_line(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}, line {number}: not valid JSON ({error.msg} at column {error.colno}); "
                            "JSON Lines holds one JSON object per line") from None
        except ValueError as error:  # nested deeper than any record
            raise DataError(f"{path}, line {number}: JSON {error}; JSON Lines holds one flat object per line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: a JSON {type(record).__name__}, not an object with "
                            f"keys {options.text_column!r} and {options.label_column!r}")
        if options.text_column not in record or options.label_column not in record:
            _missing_columns(path, list(record), options, unit=f"object on line {number}")
        yield number, record[options.text_column], record[options.label_column]


def _parquet_rows(path: Path, options: TableOptions) -> Iterator[tuple[int, object, object]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path} is not a readable Parquet file ({error})") from None
    _missing_columns(path, parquet.schema_arrow.names, options, unit="schema")
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=65_536, columns=[options.text_column, options.label_column]):
            texts = batch.column(0).to_pylist()
            labels = batch.column(1).to_pylist()
            for text, label in zip(texts, labels):
                row += 1
                if isinstance(text, bytes):
                    text = _decode_cell(path, row, text, options)
                if isinstance(label, bytes):
                    label = _decode_cell(path, row, label, options)
                yield row, text, label
    except pa.ArrowException as error:
        raise DataError(f"{path}: Parquet data after row {row} cannot be read ({error})") from None


def _decode_cell(path: Path, row: int, value: bytes, options: TableOptions) -> str:
    try:
        return value.decode("utf-8", errors="replace" if options.replace_invalid else "strict")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}, row {row}: bytes that are not UTF-8 ({error.reason} at byte {error.start}); "
                        f"{_HOW_TO_REPLACE}") from None
