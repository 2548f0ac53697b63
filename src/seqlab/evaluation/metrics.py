"""Loss, probabilities and metrics from logits: the same arithmetic for training and testing."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def loss_from_logits(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy for one logit, cross-entropy for several."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.to(logits.dtype), reduction=reduction)
    return F.cross_entropy(logits, labels, reduction=reduction)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(batch, classes) probabilities; a single logit becomes [P(0), P(1)]."""
    if logits.shape[-1] == 1:
        positive = torch.sigmoid(logits.float())
        return torch.cat([1 - positive, positive], dim=-1)
    return torch.softmax(logits.float(), dim=-1)


def predicted_labels(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        return (logits.squeeze(-1) > 0).long()
    return logits.argmax(-1)


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and mean cross-entropy over all texts."""
    return {
        "accuracy": float((predicted_labels(logits) == labels).double().mean()),
        "loss": float(loss_from_logits(logits.double(), labels)),
    }


def test_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and loss, plus ROC-AUC and F1 (binary: of the positive class; more classes:
    macro F1 and one-vs-rest ROC-AUC). Metrics undefined on this data are NaN."""
    from sklearn.metrics import f1_score, roc_auc_score

    scores = metrics_from_logits(logits, labels)
    probs = probabilities(logits).numpy()
    truth = labels.numpy()
    binary = probs.shape[1] == 2
    scores["f1"] = float(f1_score(truth, predicted_labels(logits).numpy(), average="binary" if binary else "macro",
                                  zero_division=0))
    try:
        scores["roc_auc"] = float(roc_auc_score(truth, probs[:, 1]) if binary else
                                  roc_auc_score(truth, probs, multi_class="ovr"))
    except ValueError:  # one class only in `labels`
        scores["roc_auc"] = float("nan")
    return scores


def roc_points(logits: torch.Tensor, labels: torch.Tensor, points: int = 200) -> dict[str, list[float]] | None:
    """The ROC curve of a binary classifier, thinned to about `points` points (None for more classes)."""
    from sklearn.metrics import roc_curve

    probs = probabilities(logits).numpy()
    if probs.shape[1] != 2 or len(set(labels.tolist())) < 2:
        return None
    fpr, tpr, _ = roc_curve(labels.numpy(), probs[:, 1])
    keep = sorted(set(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int).tolist()))
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}
