"""In-memory data (lists, a DataFrame, a datasets Dataset/DatasetDict) goes through the one data door."""

from __future__ import annotations

import pytest

import seqlab
from seqlab.data.sources import fingerprint, load_corpus, load_evaluation_split
from seqlab.errors import ConfigError, DataError
from seqlab.pipeline import prepare

pandas = pytest.importorskip("pandas")
datasets = pytest.importorskip("datasets")


@pytest.fixture
def small(synthetic_corpus, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    corpus = synthetic_corpus.subset(120, 40, seed=3)
    names = corpus.label_names
    return ([corpus.train.texts, [names[int(label)] for label in corpus.train.labels]],
            [corpus.test.texts, [names[int(label)] for label in corpus.test.labels]])


def test_lists_frame_and_dataset_give_the_same_corpus(small):
    (texts, labels), _ = small
    frame = pandas.DataFrame({"body": texts, "y": labels})
    sources = [seqlab.DataSource(texts=texts, labels=labels),
               seqlab.DataSource(frame=frame, text_column="body", label_column="y"),
               seqlab.DataSource(dataset=datasets.Dataset.from_pandas(frame), text_column="body", label_column="y")]
    corpora = [load_corpus(source) for source in sources]
    for corpus in corpora:
        assert corpus.label_names == ("negative", "positive")
        assert corpus.train.texts == corpora[0].train.texts and corpus.test.texts == corpora[0].test.texts
        assert len(corpus.test) == round(len(texts) * 0.2)  # the stratified test share, as for a file
    assert [c.name for c in corpora] == ["texts", "frame", "dataset"]


def test_a_dataset_dict_gives_its_own_splits_and_class_label_names(small):
    (texts, labels), (test_texts, test_labels) = small
    feature = datasets.ClassLabel(names=["negative", "positive"])
    features = datasets.Features({"text": datasets.Value("string"), "label": feature})
    split = lambda t, l: datasets.Dataset.from_dict({"text": t, "label": [feature.str2int(x) for x in l]}, features)  # noqa: E731
    both = datasets.DatasetDict({"train": split(texts, labels), "test": split(test_texts, test_labels)})
    corpus = load_corpus(seqlab.DataSource(dataset=both))
    assert corpus.train.texts == texts and corpus.test.texts == test_texts
    assert corpus.label_names == ("negative", "positive")  # the ClassLabel's names, not 0 and 1
    evaluated = load_evaluation_split(seqlab.DataSource(dataset=both), corpus.label_names)
    assert evaluated.texts == test_texts  # evaluation reads the test split
    with pytest.raises(DataError, match="has no 'train' split .*'validation'"):
        load_corpus(seqlab.DataSource(dataset=datasets.DatasetDict({"validation": split(texts, labels)})))


def test_prepare_caches_in_memory_data_by_content(small):
    (texts, labels), _ = small
    first = prepare(seqlab.DataSource(texts=texts, labels=labels))
    assert not first.from_cache
    again = prepare(seqlab.DataSource(texts=list(texts), labels=list(labels)))  # equal content, other lists
    assert again.from_cache and again.fingerprint == first.fingerprint
    flipped = ["positive" if labels[0] == "negative" else "negative"] + labels[1:]
    assert fingerprint(seqlab.DataSource(texts=texts, labels=flipped)) != fingerprint(
        seqlab.DataSource(texts=texts, labels=labels))
    assert not prepare(seqlab.DataSource(texts=texts, labels=flipped)).from_cache


@pytest.mark.parametrize("change, message", [
    (lambda t, l: (t[:3] + [""] + t[4:], l), r"texts, row 3: the text .* is empty"),
    (lambda t, l: (t, l[:-1]), "texts= has 120 items but labels= has 119"),
    (lambda t, l: (t, ["positive"] * len(l)), "single class"),
    (lambda t, l: (t, [1] + l[1:]), "mixes whole numbers"),
])
def test_bad_rows_are_named_as_in_files(small, change, message):
    (texts, labels), _ = small
    texts, labels = change(list(texts), list(labels))
    with pytest.raises(DataError, match=message):
        load_corpus(seqlab.DataSource(texts=texts, labels=labels))


def test_frame_problems_name_the_row_or_column(small):
    (texts, labels), _ = small
    frame = pandas.DataFrame({"text": texts, "label": labels})
    frame.loc[7, "label"] = None
    with pytest.raises(DataError, match="the DataFrame, row 7: the label .* is missing"):
        load_corpus(seqlab.DataSource(frame=frame))
    with pytest.raises(DataError, match="the DataFrame has no column 'body'; it has 'text', 'label'"):
        load_corpus(seqlab.DataSource(frame=frame, text_column="body"))


def test_options_that_cannot_go_together_are_refused(small):
    (texts, labels), _ = small
    with pytest.raises(ConfigError, match="both texts= and labels="):
        seqlab.DataSource(texts=texts)
    with pytest.raises(ConfigError, match="drop data="):
        seqlab.DataSource(data="reviews.csv", texts=texts, labels=labels)
    with pytest.raises(ConfigError, match="not texts= and frame="):
        seqlab.DataSource(texts=texts, labels=labels, frame=pandas.DataFrame({"text": texts, "label": labels}))
    from seqlab.recipes import Recipe, train_recipe

    with pytest.raises(ConfigError, match="texts= data cannot be"):
        train_recipe(Recipe("lstm", data=seqlab.DataSource(texts=texts, labels=labels)), "unused")


def test_train_and_evaluate_on_lists(small, tmp_path):
    (texts, labels), (test_texts, test_labels) = small
    corpus = prepare(seqlab.DataSource(texts=texts, labels=labels)).corpus
    _, result = seqlab.train_model("fasttext", corpus, seqlab.TrainConfig(epochs=2, batch_size=32, validation_split=0),
                                   out=tmp_path / "run", embedding_dim=8)
    assert result.test["accuracy"] > 0
    scores = seqlab.evaluate_run(tmp_path / "run", seqlab.DataSource(texts=test_texts, labels=test_labels))
    assert scores["test_reviews"] == len(test_texts) and 0 <= scores["accuracy"] <= 1
