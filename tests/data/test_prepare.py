"""prepare(): any source read, encoded, cached by content and settings, and summarised."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from seqlab.data.sources import DataSource, fingerprint, load_corpus
from seqlab.errors import ConfigError, DataError
from seqlab.pipeline import prepare
from seqlab.text.encoder import EncoderConfig
from seqlab.text.prepared import prepare_source


def test_cache_is_keyed_by_file_content_and_encoder_settings(files, tmp_path):
    train, test = files
    source = DataSource(data=str(train), test_data=str(test))
    first = prepare(source)
    assert not first.from_cache and first.corpus.label_names == ("negative", "positive")
    assert prepare(source).from_cache
    moved = tmp_path / "moved.csv"
    train.rename(moved)  # same content under another name: still the same data
    assert prepare(DataSource(data=str(moved), test_data=str(test))).from_cache
    assert not prepare(DataSource(data=str(moved), test_data=str(test)), EncoderConfig(maxlen=50)).from_cache
    content = moved.read_bytes()
    moved.write_bytes(content.replace(b"negative", b"positive", 1))  # one label flipped, same size
    changed = prepare(DataSource(data=str(moved), test_data=str(test)))
    assert not changed.from_cache
    assert changed.corpus.train.labels.sum() == first.corpus.train.labels.sum() + 1
    options = DataSource(data=str(moved), test_data=str(test), text_column="text", replace_invalid=True)
    assert not prepare(options).from_cache  # a reading option is part of the key too


def test_summary_counts_classes_duplicates_and_overlap(files):
    train, test = files
    summary = prepare(DataSource(data=str(train), test_data=str(test))).summary
    labels = [row[1] for row in csv.reader(open(train, encoding="utf-8"))][1:]
    assert summary.train_counts == [labels.count("negative"), labels.count("positive")]
    assert sum(summary.test_counts) == 61
    assert summary.text.train_duplicates == 2 and summary.text.overlap == 1
    assert any("also occur in the training texts" in warning for warning in summary.warnings)
    assert summary.length_percentiles["p50"] <= summary.length_percentiles["p90"] <= summary.length_percentiles["max"]
    assert 0.9 < summary.train_coverage <= 1.0 and summary.test_coverage < summary.train_coverage
    again = prepare(DataSource(data=str(train), test_data=str(test)))
    assert again.from_cache and again.summary.to_dict() == summary.to_dict()


def test_without_a_test_set_a_stratified_share_is_held_out(files):
    train, _ = files
    labels = [row[1] for row in csv.reader(open(train, encoding="utf-8"))][1:]
    counts = [labels.count("negative"), labels.count("positive")]
    prepared = prepare(DataSource(data=str(train), test_split=0.25))
    assert prepared.summary.test_counts == [round(count * 0.25) for count in counts]
    assert [a + b for a, b in zip(prepared.summary.train_counts, prepared.summary.test_counts)] == counts


def test_a_prepared_folder_is_just_another_source(files, tmp_path):
    train, test = files
    source = DataSource(data=str(train), test_data=str(test))
    config = EncoderConfig(max_features=2_000, maxlen=100)
    folder = prepare_source(source, tmp_path / "prepared", config, chunk_size=64, workers=1)
    assert json.loads((folder / "manifest.json").read_text())["source"] == fingerprint(source)

    prepared = prepare(DataSource(data=str(folder)))
    corpus = prepared.corpus
    assert isinstance(corpus.train.encoded.ids, np.memmap) and corpus.encoder.config == config
    assert prepared.from_cache and prepared.fingerprint.startswith("prepared:")
    assert (len(corpus.train), len(corpus.test)) == (202, 61)
    assert prepared.summary.text.train_duplicates == 2 and prepared.summary.text.overlap == 1  # from the manifest
    assert prepare(DataSource(data=str(folder)), config).corpus.encoder.config == config  # the same settings: fine

    # A subset selects the reviews the same sizes draw from the data it was made from.
    subset = prepare(DataSource(data=str(folder)), None, 100, 30).corpus
    raw = load_corpus(source, 100, 30)
    for name in ("train", "test"):
        selected, texts = getattr(subset, name), getattr(raw, name)
        expected = corpus.encoder.encode(texts.texts)
        assert np.array_equal(selected.labels, texts.labels)
        assert all(np.array_equal(selected.encoded.sequence(i), expected.sequence(i)) for i in range(len(texts)))


def test_options_a_prepared_folder_cannot_honour_are_errors_naming_them(files, tmp_path):
    train, test = files
    source = DataSource(data=str(train), test_data=str(test))
    folder = prepare_source(source, tmp_path / "prepared", EncoderConfig(maxlen=100), chunk_size=256, workers=1)
    with pytest.raises(ConfigError, match="--maxlen 50 .it was prepared with 100"):
        prepare(DataSource(data=str(folder)), EncoderConfig(maxlen=50))
    with pytest.raises(ConfigError, match="--test-data; --text-column cannot apply"):
        prepare(DataSource(data=str(folder), text_column="body", test_data=str(test)))
    with pytest.raises(DataError, match="holds token ids, not the texts"):
        load_corpus(DataSource(data=str(folder)))
    with pytest.raises(DataError, match="preparation of other data"):
        prepare_source(DataSource(data=str(test)), folder, EncoderConfig(maxlen=100), workers=1)


def test_an_unfinished_folder_is_named_as_such(tmp_path):
    (tmp_path / "half" / ".chunks").mkdir(parents=True)
    with pytest.raises(DataError, match="unfinished"):
        prepare(DataSource(data=str(tmp_path / "half")))
