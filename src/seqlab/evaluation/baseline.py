"""The classic references (scikit-learn): TF-IDF over word 1-2-grams + logistic regression, and
NB-LR / NBSVM (Wang & Manning, 2012, as Mesnil et al., 2015 ran them on IMDb): binary 1-2-gram
features scaled by the naive-Bayes log-count ratio, then liblinear's logistic regression or a
linear SVM whose weights are interpolated towards their mean magnitude.

Trained on the same training texts the sequence models see (validation share included:
they need none) and scored on the same test texts, with the same metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from seqlab.evaluation.metrics import metrics_from_logits, roc_points

NAME = "tfidf-logreg"
NB_NAMES = ("nb-logreg", "nbsvm")
TOKENS = r"(?u)\b[\w']+\b"  # words as the encoder splits them: letters, digits, '_' and apostrophes


@dataclass
class BaselineConfig:
    ngram_max: int = 2  # word n-grams from 1 up to this
    min_df: int = 2  # ignore n-grams in fewer texts than this
    max_features: int | None = 200_000  # keep the most frequent n-grams (None: all)
    C: float = 4.0  # inverse regularisation strength of the logistic regression
    sublinear_tf: bool = True  # 1 + log(tf) instead of raw counts


@dataclass
class NaiveBayesConfig:
    ngram_max: int = 2  # word n-grams from 1 up to this, as Mesnil et al.
    alpha: float = 1.0  # smoothing count added to every feature of each class
    C: float = 1.0  # inverse regularisation strength (liblinear)
    beta: float = 0.25  # NBSVM: weight of the SVM's own weights against their mean magnitude


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
                                 token_pattern=TOKENS)
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=config.C, max_iter=1000)
    classifier.fit(features, train_labels)
    train_seconds = time.perf_counter() - started
    scores = classifier.decision_function(vectorizer.transform(test_texts))
    parameters = int(classifier.coef_.size + classifier.intercept_.size)
    return _result(NAME, parameters, train_seconds, scores, test_labels, asdict(config))


def _result(name: str, parameters: int, seconds: float, scores: np.ndarray, test_labels: np.ndarray,
            config: dict) -> BaselineResult:
    logits = torch.from_numpy(np.asarray(scores, dtype=np.float32))
    logits = logits.unsqueeze(-1) if logits.ndim == 1 else logits  # (texts, outputs), as the models give
    labels = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))
    return BaselineResult(name, parameters, seconds, metrics_from_logits(logits, labels), roc_points(logits, labels),
                          config)


def nb_ratios(features, positive: np.ndarray, alpha: float) -> np.ndarray:
    """The log-count ratio r = log((p / |p|_1) / (q / |q|_1)) of binary `features` (texts, n-grams),
    p and q the smoothed feature counts of the texts where `positive` is true and false."""
    p = alpha + np.asarray(features[positive].sum(axis=0)).ravel()  # (n-grams,)
    q = alpha + np.asarray(features[~positive].sum(axis=0)).ravel()  # (n-grams,)
    return np.log((p / p.sum()) / (q / q.sum()))


def naive_bayes_baselines(train_texts: Sequence[str], train_labels: np.ndarray, test_texts: Sequence[str],
                          test_labels: np.ndarray, config: NaiveBayesConfig | None = None) -> list[BaselineResult]:
    """NB-LR and NBSVM; with more than two classes, one of each per class against the rest."""
    from dataclasses import asdict

    import scipy.sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    config = config or NaiveBayesConfig()
    started = time.perf_counter()
    vectorizer = CountVectorizer(ngram_range=(1, config.ngram_max), binary=True, token_pattern=TOKENS)
    train = vectorizer.fit_transform(train_texts).astype(np.float64)  # (texts, n-grams) 0/1
    test = vectorizer.transform(test_texts).astype(np.float64)
    shared = time.perf_counter() - started
    labels = np.asarray(train_labels)
    classes = np.unique(labels)
    problems = [classes[-1]] if len(classes) == 2 else list(classes)  # the positive class of each one-vs-rest
    results = []
    for name in NB_NAMES:
        started = time.perf_counter()
        columns = []
        for positive in problems:
            ratio = nb_ratios(train, labels == positive, config.alpha)  # (n-grams,)
            scale = scipy.sparse.diags(ratio)
            target = (labels == positive).astype(np.int64)
            if name == "nb-logreg":
                model = LogisticRegression(C=config.C, solver="liblinear").fit(train @ scale, target)
                columns.append(model.decision_function(test @ scale))
            else:
                svm = LinearSVC(C=config.C).fit(train @ scale, target)
                weights = svm.coef_.ravel()
                interpolated = (1 - config.beta) * np.abs(weights).mean() + config.beta * weights
                columns.append((test @ scale) @ interpolated + svm.intercept_[0])
        scores = columns[0] if len(columns) == 1 else np.stack(columns, axis=1)  # (texts,) or (texts, classes)
        seconds = shared + time.perf_counter() - started
        results.append(_result(name, train.shape[1] * len(problems), seconds, scores, test_labels, asdict(config)))
    return results


def reference_baselines(train_texts: Sequence[str], train_labels: np.ndarray, test_texts: Sequence[str],
                        test_labels: np.ndarray) -> list[BaselineResult]:
    """Every reference row of `seqlab compare`: TF-IDF + LR, NB-LR, NBSVM."""
    return [tfidf_baseline(train_texts, train_labels, test_texts, test_labels),
            *naive_bayes_baselines(train_texts, train_labels, test_texts, test_labels)]


def encoded_texts(split) -> list[str]:
    """Token ids as space-separated words, for corpora whose raw texts are not at hand."""
    encoded = split.encoded
    return [" ".join(map(str, encoded.sequence(row).tolist())) for row in range(len(split))]
