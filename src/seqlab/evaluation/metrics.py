"""Loss, probabilities and metrics from logits: the same arithmetic for training, testing and prediction."""

from __future__ import annotations

from typing import Any, Sequence

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


def epoch_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """What a training epoch's history records of a split, from its (texts, outputs) logits: accuracy
    and mean cross-entropy, all that early stopping can monitor (cheap: no sklearn)."""
    return {"accuracy": float((predicted_labels(logits) == labels).double().mean()),
            "loss": float(loss_from_logits(logits.double(), labels))}


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor,
                        label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Every figure seqlab reports on labelled texts, from their (texts, outputs) logits: accuracy,
    mean cross-entropy, F1 and ROC-AUC (binary: of the positive class; more classes: macro F1 and
    one-vs-rest ROC-AUC; NaN where undefined on this data) and the recall of each class (None for
    a class absent from `labels`), keyed by `label_names` (default: class numbers)."""
    from sklearn.metrics import f1_score, roc_auc_score

    predicted = predicted_labels(logits)
    probs = probabilities(logits).numpy()
    truth, guesses = labels.numpy(), predicted.numpy()
    binary = probs.shape[1] == 2
    scores: dict[str, Any] = {
        **epoch_metrics(logits, labels),
        "f1": float(f1_score(truth, guesses, average="binary" if binary else "macro", zero_division=0)),
    }
    try:
        scores["roc_auc"] = float(roc_auc_score(truth, probs[:, 1]) if binary else
                                  roc_auc_score(truth, probs, multi_class="ovr"))
    except ValueError:  # one class only in `labels`
        scores["roc_auc"] = float("nan")
    names = label_names if label_names is not None else [str(number) for number in range(probs.shape[1])]
    scores["recall"] = {name: float((guesses[truth == number] == number).mean()) if (truth == number).any() else None
                        for number, name in enumerate(names)}
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
