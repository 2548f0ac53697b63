"""Tables and folders of labelled texts: every format read alike; bad input named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqlab.data.files import TableOptions, read_table
from seqlab.data.folders import read_folder
from seqlab.data.sources import DataSource, load_corpus, stratified_split
from seqlab.data.corpus import Split
from seqlab.errors import ConfigError, DataError

ROWS = [("A fine, \"quoted\" film,\nover two lines.", "good"), ("Dull.", "bad"), ("Großartig! 😀 עברית", "good"),
        ("Never again.", "bad"), ("Loved it", "good"), ("Meh", "bad")]


def write(path: Path, rows=ROWS, header=("text", "label")) -> Path:
    kind = path.suffix
    if kind in (".csv", ".tsv"):
        import csv

        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t" if kind == ".tsv" else ",")
            writer.writerow(header)
            writer.writerows(rows)
    elif kind == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, row)), ensure_ascii=False) + "\n" for row in rows),
                        encoding="utf-8")
    else:
        columns = list(zip(*rows)) if rows else [[], []]
        pq.write_table(pa.table({header[0]: list(columns[0]), header[1]: list(columns[1])}), path, row_group_size=2)
    return path


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.jsonl", "d.parquet"])
def test_every_format_reads_the_same_rows(tmp_path, name):
    table = read_table(write(tmp_path / name))
    assert table.texts == [text for text, _ in ROWS]
    assert table.labels == [label for _, label in ROWS]


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl", "d.parquet"])
def test_column_names_are_options_and_missing_ones_are_named(tmp_path, name):
    path = write(tmp_path / name, header=("review", "stars"))
    table = read_table(path, TableOptions(text_column="review", label_column="stars"))
    assert len(table) == len(ROWS)
    with pytest.raises(DataError, match=r"no column 'text' or 'label'.*'review', 'stars'.*--text-column"):
        read_table(path)


def test_integer_labels_and_line_numbers_of_multiline_rows(tmp_path):
    path = write(tmp_path / "d.csv", rows=[("first\nsecond line", 3), ("x", 1), ("", 2)])
    with pytest.raises(DataError, match=r"d.csv, line 5: the text in column 'text' is empty"):
        read_table(path)
    table = read_table(write(tmp_path / "ok.csv", rows=[("a", 3), ("b", "-1"), ("c", 10)]))
    assert table.labels == [3, -1, 10]


@pytest.mark.parametrize("rows,message", [
    ([("good film", "pos"), ("bad film", "")], r"line 3: the label in column 'label' is missing"),
    ([("good film", "pos"), ("bad film", "1")], r"line 3: the label column 'label' mixes whole numbers \('1'|1"),
    ([], r"has a header but no rows"),
])
def test_bad_rows_are_named_by_line(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path / "d.csv", rows=rows))


def test_json_lines_problems_are_named_by_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n\n{"text": "half", "label": 2.5}\n')
    with pytest.raises(DataError, match=r"d.jsonl, line 3: label 2.5 is not a whole number"):
        read_table(path)
    path.write_text('{"text": "ok", "label": 1}\n{"text": "ok", "label": true}\n')
    with pytest.raises(DataError, match="line 2: label True is a boolean"):
        read_table(path)
    path.write_text('{"text": "ok", "label": 1}\n{"text": "ok", "label": 1\n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_table(path)
    path.write_text('{"text": "ok", "label": 1}\n["a", 1]\n')
    with pytest.raises(DataError, match="line 2: a JSON list, not an object"):
        read_table(path)


def test_parquet_integer_labels_nulls_and_rows(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b", None], "label": [0, 1, 1]}), path)
    with pytest.raises(DataError, match=r"d.parquet, row 3: the text in column 'text' is empty"):
        read_table(path)
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_table(path)


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl"])
def test_undecodable_bytes_name_the_line_and_can_be_replaced(tmp_path, name):
    path = write(tmp_path / name)
    data = path.read_bytes().replace("Dull".encode(), b"D\xffll")
    path.write_bytes(data)
    line = 4 if name == "d.csv" else 2  # the CSV's first row spans lines 2-3
    with pytest.raises(DataError, match=rf"{name}, line {line}: bytes that are not UTF-8.*--replace-invalid"):
        read_table(path)
    table = read_table(path, TableOptions(replace_invalid=True))
    assert "D\ufffdll." in table.texts


def test_empty_and_unknown_files_say_what_to_do(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty.csv is empty; it needs a header row"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match="name it .csv, .tsv, .jsonl, .parquet or .ft"):
        read_table(tmp_path / "data.xlsx")
    with pytest.raises(DataError, match="no data file at"):
        read_table(tmp_path / "absent.csv")


def test_a_csv_with_too_few_fields_is_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("label,text\npos,good\nneg\n")
    with pytest.raises(DataError, match="d.csv, line 3: 1 field"):
        read_table(path)


def _folder(root: Path, classes: dict[str, list[str]]) -> Path:
    for name, texts in classes.items():
        (root / name).mkdir(parents=True)
        for number, text in enumerate(texts):
            (root / name / f"{number}.txt").write_text(text, encoding="utf-8")
    return root


def test_a_folder_per_class(tmp_path):
    root = _folder(tmp_path / "reviews", {"neg": ["awful", "bad"], "pos": ["great", "good", "fine"]})
    (root / "pos" / "notes.md").write_text("ignored")
    table = read_folder(root)
    assert table.labels == ["neg", "neg", "pos", "pos", "pos"] and table.texts[0] == "awful"
    (root / "pos" / "3.txt").write_bytes(b"ok\n\xfe")
    with pytest.raises(DataError, match=r"3.txt, line 2: bytes that are not UTF-8"):
        read_folder(root)
    (root / "pos" / "3.txt").write_text("  ")
    with pytest.raises(DataError, match="3.txt is empty"):
        read_folder(root)


def test_a_folder_with_train_and_test(tmp_path):
    root = tmp_path / "data"
    _folder(root / "train", {"neg": ["awful", "bad", "poor"], "pos": ["great", "good"]})
    _folder(root / "test", {"neg": ["dire"], "pos": ["super"], "meh": ["so so"]})
    with pytest.raises(DataError, match=r"0.txt: label 'meh' never occurs in the training data"):
        load_corpus(DataSource(data=str(root)))
    (root / "test" / "meh" / "0.txt").unlink()
    (root / "test" / "meh").rmdir()
    corpus = load_corpus(DataSource(data=str(root)))
    assert corpus.label_names == ("neg", "pos") and len(corpus.train) == 5 and corpus.test.labels.tolist() == [0, 1]


def test_labels_become_classes_in_sorted_order_and_the_test_file_is_checked(tmp_path):
    train = write(tmp_path / "train.csv", rows=[("a", "10"), ("b", "2"), ("c", "2"), ("d", "10")])
    test = write(tmp_path / "test.csv", rows=[("e", "2"), ("f", "7")])
    with pytest.raises(DataError, match=r"test.csv, line 3: label 7 never occurs in the training data \(its classes: 2, 10\)"):
        load_corpus(DataSource(data=str(train), test_data=str(test)))
    single = write(tmp_path / "one.csv", rows=[("a", "x"), ("b", "x")])
    with pytest.raises(DataError, match="single class"):
        load_corpus(DataSource(data=str(single)))
    corpus = load_corpus(DataSource(data=str(train), test_data=str(write(test, rows=[("e", "2")]))))
    assert corpus.label_names == ("2", "10") and corpus.train.labels.tolist() == [1, 0, 0, 1]
    with pytest.raises(ConfigError, match="own test reviews"):
        load_corpus(DataSource(data="imdb", test_data=str(test)))


def test_stratified_split_keeps_class_shares(tmp_path):
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    whole = Split([f"text {i}" for i in range(1000)], labels)
    train, test = stratified_split(whole, 0.2, seed=1)
    assert np.bincount(test.labels).tolist() == [100, 60, 40]
    assert sorted(train.texts + test.texts) == sorted(whole.texts)
    again, _ = stratified_split(whole, 0.2, seed=1)
    assert again.texts == train.texts
    rare = Split(["a", "b", "c", "d"], np.array([0, 0, 0, 1]))
    assert stratified_split(rare, 0.2, seed=0)[1].labels.tolist() == [0]  # a lone text stays in training


def test_a_json_lines_record_nested_absurdly_deep_is_named_by_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine", "label": "pos"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"d.jsonl, line 2: JSON nested too deeply"):
        read_table(path, TableOptions())
