"""The classic reference: TF-IDF over word 1-2-grams, then logistic regression (scikit-learn).

Trained on the same training texts the sequence models see (validation share included:
it needs none) and scored on the same test texts, with the same metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from seqlab.evaluation.metrics import metrics_from_logits, roc_points

NAME = "tfidf-logreg"


@dataclass
class BaselineConfig:
    ngram_max: int = 2  # word n-grams from 1 up to this
    min_df: int = 2  # ignore n-grams in fewer texts than this
    max_features: int | None = 200_000  # keep the most frequent n-grams (None: all)
    C: float = 4.0  # inverse regularisation strength of the logistic regression
    sublinear_tf: bool = True  # 1 + log(tf) instead of raw counts


@dataclass
class BaselineResult:
    name: str
    parameters: int
    train_seconds: float
    test: dict[str, float]
    roc: dict[str, list[float]] | None
    config: dict = field(default_factory=dict)


def tfidf_baseline(train_texts: Sequence[str], train_labels: np.ndarray, test_texts: Sequence[str],
                   test_labels: np.ndarray, config: BaselineConfig | None = None) -> BaselineResult:
    from dataclasses import asdict

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    config = config or BaselineConfig()
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, config.ngram_max), min_df=config.min_df,
                                 max_features=config.max_features, sublinear_tf=config.sublinear_tf,
                                 token_pattern=r"(?u)\b[\w']+\b")
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=config.C, max_iter=1000)
    classifier.fit(features, train_labels)
    train_seconds = time.perf_counter() - started
    scores = classifier.decision_function(vectorizer.transform(test_texts))
    logits = torch.from_numpy(np.asarray(scores, dtype=np.float32))
    logits = logits.unsqueeze(-1) if logits.ndim == 1 else logits  # (texts, outputs), as the models give
    labels = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))
    parameters = int(classifier.coef_.size + classifier.intercept_.size)
    return BaselineResult(NAME, parameters, train_seconds, metrics_from_logits(logits, labels),
                          roc_points(logits, labels), asdict(config))


def encoded_texts(split) -> list[str]:
    """Token ids as space-separated words, for corpora whose raw texts are not at hand."""
    encoded = split.encoded
    return [" ".join(map(str, encoded.sequence(row).tolist())) for row in range(len(split))]
