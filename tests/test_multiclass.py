"""Multi-class end to end on real data: IMDb's star ratings in three classes, through the CLI.

The classes come from the rating in each review's file name ({id}_{rating}.txt): 1-3 stars
"negative", 4 or 7 "mixed", 8-10 "positive" (IMDb holds no 5s or 6s). Training reviews come
from IMDb's train split, test reviews from its test split.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.imdb import iter_reviews

runner = CliRunner()


def rating_class(rating: int) -> str:
    return "negative" if rating <= 3 else "mixed" if rating in (4, 7) else "positive"


@pytest.fixture(scope="module")
def ratings(archive, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ratings")
    rows = {"train": [], "test": []}
    for split, _folder, review_id, rating, text in iter_reviews(archive):
        rows[split].append((review_id, text, rating_class(rating)))
    for split, found in rows.items():
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["review", "stars"])
            writer.writerows((text, label) for _, text, label in sorted(found))
    return folder


@pytest.mark.slow
def test_three_rating_classes_learned_evaluated_and_predicted_by_name(ratings, tmp_path):
    run = tmp_path / "stars"
    columns = ["--text-column", "review", "--label-column", "stars"]
    trained = runner.invoke(app, [
        "train", "lstm", "--data", str(ratings / "train.csv"), "--test-data", str(ratings / "test.csv"), *columns,
        "--train-size", "3000", "--test-size", "900", "--epochs", "2", "--batch-size", "32", "--maxlen", "100",
        "--embedding-dim", "64", "--hidden-size", "32", "--out", str(run)])
    assert trained.exit_code == 0, trained.output
    assert "mixed" in trained.output and "1,000" in trained.output  # the class table: 1,000 training texts each
    config = json.loads((run / "config.json").read_text())
    assert config["label_names"] == ["mixed", "negative", "positive"]
    assert config["model"]["config"]["num_classes"] == 3
    test_accuracy = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert test_accuracy >= 0.45, f"3 balanced classes (chance 0.33): test accuracy {test_accuracy:.3f}"

    evaluated = runner.invoke(app, ["evaluate", str(run), "--data", str(ratings / "test.csv"), *columns,
                                    "--test-size", "900", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.output)
    assert scores["test_reviews"] == 900 and scores["accuracy"] >= 0.45
    assert set(scores["recall"]) == {"mixed", "negative", "positive"}

    predicted = subprocess.run(
        [sys.executable, "-m", "seqlab.cli", "predict", str(run), "--json",
         "An absolute masterpiece, the best film I have seen in years. Brilliant acting.",
         "Dreadful. The worst, most boring film ever made; a waste of time."],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert predicted.returncode == 0, predicted.stderr
    answers = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [a["label"] for a in answers] == ["positive", "negative"]
    assert set(answers[0]["probabilities"]) == {"mixed", "negative", "positive"}


def test_evaluating_on_labels_the_run_never_saw_is_refused(tmp_path):
    unknown = tmp_path / "other.csv"
    unknown.write_text("review,stars\nfine film,neutral\n")
    from seqlab.data.sources import DataSource, load_evaluation_split

    from seqlab.errors import DataError

    with pytest.raises(DataError, match=r"other.csv, line 2: label 'neutral' never occurs in the training data"):
        load_evaluation_split(DataSource(data=str(unknown), text_column="review", label_column="stars"),
                              ("mixed", "negative", "positive"))
