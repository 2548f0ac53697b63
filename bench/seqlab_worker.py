"""seqlab's side of vs_keras.py: the same model, data and settings, trained and timed.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

from seqlab.evaluation.predicting import evaluate, predict_logits
from seqlab.models import build_model
from seqlab.models.kernels import predicting
from seqlab.text.cache import EncodedSplit
from seqlab.text.encoder import Encoded
from seqlab.training.batches import collate
from seqlab.training.cpu import prepare_process
from seqlab.training.fit import TrainConfig, Trainer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import peak_memory_mb  # noqa: E402  (VmHWM: this process's own peak, not its parent's)


def load_split(directory: str, name: str) -> EncodedSplit:
    arrays = {key: np.load(os.path.join(directory, f"{name}_{key}.npy")) for key in ("ids", "offsets", "labels")}
    lengths = np.diff(arrays["offsets"])
    return EncodedSplit(Encoded(arrays["ids"], arrays["offsets"], lengths), arrays["labels"])


def batch1_latencies(model, test: EncodedSplit, samples: int) -> list[float]:
    latencies = []
    with torch.inference_mode(), predicting(model):  # as a Predictor answers: from folded tables
        for row in range(samples):
            batch = collate(test, np.array([row]))
            started = time.perf_counter()
            model(batch.ids, batch.lengths)
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--precision", default="float32", help="training precision (bfloat16: autocast)")
    args = parser.parse_args()
    prepare_process()  # as the seqlab command does first
    train_all, test = load_split(args.data, "train"), load_split(args.data, "test")
    held = int(round(len(train_all) * 0.2))  # Keras's validation_split: the last 20% of the same order
    train = train_all.take(np.arange(len(train_all) - held))
    validation = train_all.take(np.arange(len(train_all) - held, len(train_all)))

    torch.manual_seed(42)
    model = build_model(args.model, vocab_size=10_000)
    trainer = Trainer(model, train, validation, TrainConfig(epochs=args.epochs, seed=42, precision=args.precision))
    history = trainer.fit()
    train_peak = peak_memory_mb()

    model.eval()
    started = time.perf_counter()
    predict_logits(model, test, batch_size=512)
    inference_seconds = time.perf_counter() - started
    scores = evaluate(model, test, batch_size=512)

    latencies = batch1_latencies(model, test, args.latency_samples)

    # The same weights in bfloat16 (opt-in in seqlab: `--precision bfloat16`).
    fast = copy.deepcopy(model).to(torch.bfloat16).eval()
    started = time.perf_counter()
    predict_logits(fast, test, batch_size=512)
    bf16_seconds = time.perf_counter() - started
    bf16_scores = evaluate(fast, test, batch_size=512)
    bf16_latencies = batch1_latencies(fast, test, args.latency_samples)

    print(json.dumps({
        "framework": f"seqlab / torch {torch.__version__}",
        "precision": args.precision,
        "shards": trainer.shards,
        "model": args.model,
        "epoch_seconds": history.seconds,
        "val_accuracy": history.val_accuracy,
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "inference_seconds": inference_seconds,
        "reviews_per_second": len(test) / inference_seconds,
        "latency_ms_p50": float(np.median(latencies) * 1000),
        "latency_ms_p99": float(np.percentile(latencies, 99) * 1000),
        "bf16_reviews_per_second": len(test) / bf16_seconds,
        "bf16_latency_ms_p50": float(np.median(bf16_latencies) * 1000),
        "bf16_test_accuracy": bf16_scores["accuracy"],
        "peak_memory_mb": peak_memory_mb(),
        "train_peak_memory_mb": train_peak,
    }))


if __name__ == "__main__":
    main()
