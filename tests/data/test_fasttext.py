"""fastText's `__label__NAME text` files as a data source: told by name, content or --format."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqlab.data.config import DataSource
from seqlab.data.files import TableOptions, read_table
from seqlab.data.sources import fingerprint, load_corpus
from seqlab.errors import ConfigError, DataError

LINES = "__label__pos A wonderful film.\n\n__label__neg  Dull,  from start to end. \n__label__pos Loved it\n"


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("name, given", [("train.ft", None), ("train.txt", None), ("train.data", "fasttext")])
def test_fasttext_lines_are_read_by_extension_content_or_format(tmp_path, name, given):
    table = read_table(_write(tmp_path / name, LINES), TableOptions(format=given))
    assert table.texts == ["A wonderful film.", "Dull,  from start to end.", "Loved it"]
    assert table.labels == ["pos", "neg", "pos"]
    assert list(table.lines) == [1, 3, 4]


def test_a_txt_file_of_other_content_is_not_taken_for_fasttext(tmp_path):
    with pytest.raises(DataError, match="cannot tell the format .*--format"):
        read_table(_write(tmp_path / "notes.txt", "just some text\n"))


@pytest.mark.parametrize("line, message", [
    ("__label__pos __label__good Great.", r"line 2: 2 labels \(__label__pos, __label__good\); multi-label data is not "
                                          "supported"),
    ("Great film.", "line 2: no __label__ label at the start"),
    ("__label__pos", "line 2: the text .* is empty"),
])
def test_bad_lines_say_what_is_wrong_in_one_line(tmp_path, line, message):
    path = _write(tmp_path / "train.ft", f"__label__neg Dull.\n{line}\n")
    with pytest.raises(DataError, match=message) as caught:
        read_table(path)
    assert "\n" not in str(caught.value)


def test_bytes_that_are_not_utf8_are_named_or_replaced(tmp_path):
    path = _write(tmp_path / "train.ft", b"__label__neg Dull.\n__label__pos Caf\xe9 scene\n")
    with pytest.raises(DataError, match="line 2: bytes that are not UTF-8"):
        read_table(path)
    assert read_table(path, TableOptions(replace_invalid=True)).texts[1] == "Caf\ufffd scene"


def test_a_fasttext_corpus_trains_like_any_file(tmp_path, synthetic_corpus):
    small = synthetic_corpus.subset(60, 20, seed=1)
    path = tmp_path / "reviews.ft"
    path.write_text("".join(f"__label__{small.label_names[int(label)]} {text}\n"
                            for text, label in zip(small.train.texts, small.train.labels)))
    corpus = load_corpus(DataSource(data=str(path)))
    assert corpus.label_names == small.label_names and len(corpus.train) + len(corpus.test) == 60
    assert fingerprint(DataSource(data=str(path))) != fingerprint(DataSource(data=str(path), format="fasttext"))
    with pytest.raises(ConfigError, match="unknown data format 'xml'"):
        DataSource(data=str(path), format="xml")
    (tmp_path / "folder" / "pos").mkdir(parents=True)
    with pytest.raises(ConfigError, match="is a folder of .txt files: drop --format"):
        load_corpus(DataSource(data=str(tmp_path / "folder"), format="fasttext"))
    with pytest.raises(ConfigError, match="IMDb is read from its archive: drop --format"):
        load_corpus(DataSource(format="csv"))


def test_the_cli_takes_format(tmp_path, seqlab_here):
    path = _write(tmp_path / "reviews.data", "__label__a one two\n__label__b three four\n")
    result = seqlab_here("train", "fasttext", "--data", str(path), "--format", "csv", "--epochs", "1",
                         "--out", str(tmp_path / "run"))
    assert result.returncode == 3 and b"has no column 'text'" in result.stderr  # the format given is the one read
    resumed = seqlab_here("train", "--resume", str(tmp_path / "run"), "--format", "fasttext")
    assert resumed.returncode == 2 and b"drop --format" in resumed.stderr
