import csv
import io
import json
import re

import pytest

from seqlab.pipeline import compare
from seqlab.training.fit import TrainConfig


@pytest.fixture(scope="module")
def tiny_comparison(tiny_reviews, imdb_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    raw = imdb_corpus.subset(600, 300, seed=5)  # any raw reviews: the baseline only needs texts
    comparison = compare(["gru", "bigru-attention", "transformer"], tiny_reviews, TrainConfig(epochs=1, batch_size=64),
                         out, baseline_corpus=raw, gradient_steps=40, embedding_dim=16, hidden_size=16)
    return comparison, out


@pytest.mark.slow
def test_report_is_self_contained_html_with_table_figures_configs_and_samples(tiny_comparison):
    comparison, out = tiny_comparison
    html = (out / "report.html").read_text()
    assert comparison.report == out / "report.html"
    assert "http://" not in html and "https://" not in html and "<script" not in html  # no network needed
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4  # history grid, accuracy vs time, ROC curves, gradients
    assert all(len(image) > 10_000 for image in images)
    for text in ("gru", "bigru-attention", "transformer", "tfidf-logreg (baseline)", "ROC-AUC", "F1",
                 "Predictions on random test reviews", "Configurations", "&quot;attention_size&quot;"):
        assert text in html, text


@pytest.mark.slow
def test_table_as_markdown_and_csv(tiny_comparison):
    comparison, out = tiny_comparison
    rows = list(csv.reader(io.StringIO((out / "results.csv").read_text())))
    assert rows[0] == ["model", "parameters", "s/epoch", "train s", "best val accuracy", "test accuracy", "test loss",
                       "ROC-AUC", "F1"]
    assert [row[0] for row in rows[1:]] == ["gru", "bigru-attention", "transformer", "tfidf-logreg (baseline)",
                                          "nb-logreg (baseline)", "nbsvm (baseline)"]
    accuracy = {row[0]: float(row[5]) for row in rows[1:]}
    assert accuracy["gru"] == pytest.approx(comparison.results[0].test["accuracy"], abs=1e-4)
    assert (out / "results.md").read_text().count("\n") == 8  # header, rule, six rows
    results = json.loads((out / "results.json").read_text())
    assert set(results["gradients"]) == {"gru (trained)", "gru (fresh)"}  # only one-directional recurrent models
    assert [b["name"] for b in results["baselines"]] == ["tfidf-logreg", "nb-logreg", "nbsvm"]
    assert all(b["test"]["accuracy"] > 0.5 for b in results["baselines"])


def test_a_failed_model_is_reported_and_the_others_kept(synthetic, tmp_path):
    from seqlab.models.embeddings import EmbeddingMatrix
    import torch

    # 5-dimensional vectors fit no model built with embedding_dim=16: every model fails, report still written.
    matrix = EmbeddingMatrix(torch.zeros(synthetic.encoder.vocab_size, 5),
                             torch.zeros(synthetic.encoder.vocab_size, dtype=torch.bool), "vectors.txt")
    comparison = compare(["gru"], synthetic, TrainConfig(epochs=1), tmp_path, embeddings=matrix,
                         gradient_steps=0, embedding_dim=16)
    assert comparison.results[0].error and "pass --embedding-dim 5" in comparison.results[0].error
    assert "failed" in (tmp_path / "results.md").read_text()
