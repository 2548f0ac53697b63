"""The one batched prediction loop, and a model's logits and metrics on a split through it.

Texts go in length-sorted batches (little padding), each batch is split over CPU threads of one
core each (training/cpu.py's map_split) and the logits come back in the split's order. The
trainer's validation, `evaluate`, the multi-process evaluation, the comparison's sample
predictions and the Predictor (either backend) all predict through `batched_logits`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from seqlab.evaluation.metrics import metrics_from_logits
from seqlab.models.base import SequenceClassifier
from seqlab.models.kernels import predicting
from seqlab.text.cache import EncodedSplit
from seqlab.training.batches import Batch, iterate
from seqlab.training.cpu import map_split

Forward = Callable[[Batch], torch.Tensor]  # one padded batch -> its (batch, outputs) float32 logits on the CPU


def batched_logits(forward: Forward, split: EncodedSplit, batch_size: int = 512, threads: int = 1) -> torch.Tensor:
    """(texts, outputs) logits of every text of `split`, in its order: `forward` on length-sorted
    batches of `batch_size` texts, each split in `threads` pieces run on threads of one core each."""

    def run(batch: Batch) -> tuple[np.ndarray, torch.Tensor]:
        return batch.indices, forward(batch)

    out: torch.Tensor | None = None
    for indices, logits in map_split(run, iterate(split, batch_size, rng=None, bucket=True), threads):
        if out is None:
            out = torch.empty((len(split), logits.shape[-1]), dtype=torch.float32)
        out[torch.from_numpy(indices)] = logits
    return out if out is not None else torch.empty((0, 1))


def cpu_threads(model: torch.nn.Module, threads: int | None = None) -> int:
    """How many pieces to split each batch in: `threads` (default torch's thread count) on a CPU, one on a GPU."""
    return (threads or torch.get_num_threads()) if next(model.parameters()).device.type == "cpu" else 1


def predict_logits(model: SequenceClassifier, split: EncodedSplit, batch_size: int = 512,
                   threads: int | None = None) -> torch.Tensor:
    """(texts, outputs) logits of `model` on `split`, in the split's order. On a CPU each batch is
    split over `threads` threads of one core each (default: torch's thread count), as in training."""
    device = next(model.parameters()).device

    @torch.no_grad()  # on the thread that runs the piece: grad mode belongs to each thread
    def forward(batch: Batch) -> torch.Tensor:
        batch = batch.to(device)
        return model(batch.ids, batch.lengths).logits.float().cpu()  # (batch, outputs)

    with predicting(model):  # eval mode and folded tables for the block (models/kernels.py)
        return batched_logits(forward, split, batch_size, cpu_threads(model, threads))


def evaluate(model: SequenceClassifier, split: EncodedSplit, batch_size: int = 512, threads: int | None = None,
             label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, loss, F1, ROC-AUC and recall per class of `model` on `split` (e.g. the test reviews)."""
    return metrics_from_logits(predict_logits(model, split, batch_size, threads), torch.from_numpy(split.labels),
                               label_names)
