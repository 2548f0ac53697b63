"""Loss, probabilities and metrics from logits: the same arithmetic for training and testing."""

from __future__ import annotations

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
