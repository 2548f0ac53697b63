"""The full lecture on IMDb with its settings: SimpleRNN and LSTM, 5 epochs, batch 128.

    python bench/lecture.py            # all 50,000 reviews
    python bench/lecture.py --quick    # a small subset, to check the script runs

Prints a Markdown table and writes bench/results/lecture.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import archive_path, markdown_table, peak_memory_mb, write_results  # noqa: E402

import seqlab  # noqa: E402
from seqlab.evaluation.figures import history_grid  # noqa: E402

# The lecture's Keras code on TensorFlow 2.21, this 2-core machine, as reported in issue #2.
KERAS_REFERENCE = {"rnn": {"seconds": 82.8, "accuracy": 0.810}, "lstm": {"seconds": 194.0, "accuracy": 0.821}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 train / 1,000 test reviews, 1 epoch")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-lecture"))
    args = parser.parse_args()

    started = time.perf_counter()
    sizes = (2000, 1000) if args.quick else (None, None)
    corpus = seqlab.prepare(seqlab.DataSource(archive=str(archive_path()) if archive_path() else None), train_size=sizes[0], test_size=sizes[1]).corpus
    prepare_seconds = time.perf_counter() - started
    training = seqlab.TrainConfig(epochs=1 if args.quick else 5)

    results = {}
    for name in ("rnn", "lstm"):
        _, result = seqlab.train_model(name, corpus, training, out=args.out / name)
        seconds = result.history["seconds"]
        results[name] = {
            "epoch_seconds": seconds,
            "median_epoch_seconds": statistics.median(seconds),
            "train_seconds": result.train_seconds,
            "test_accuracy": result.test["accuracy"],
            "test_loss": result.test["loss"],
            "val_accuracy": result.history["val_accuracy"],
            "parameters": result.parameters,
        }
    history_grid({n: seqlab.load(args.out / n).run.history for n in results}, args.out / "sequence_models_history.png")

    rows = []
    for name, r in results.items():
        keras = KERAS_REFERENCE[name]
        rows.append([name.upper(), f"{r['train_seconds']:.1f}", f"{r['median_epoch_seconds']:.1f}",
                     f"{r['test_accuracy']:.4f}", f"{r['test_loss']:.4f}", f"{keras['seconds']:.1f}",
                     f"{keras['accuracy']:.3f}"])
    header = ["model", "train s (5 epochs)", "s/epoch (median)", "test accuracy", "test loss",
              "Keras train s (reference)", "Keras test accuracy (reference)"]
    print(markdown_table(header, rows))
    print(f"\ndata preparation {prepare_seconds:.1f} s, peak memory {peak_memory_mb():.0f} MB")
    path = write_results("lecture-quick" if args.quick else "lecture", {
        "quick": args.quick, "train_reviews": len(corpus.train), "test_reviews": len(corpus.test),
        "prepare_seconds": prepare_seconds, "peak_memory_mb": peak_memory_mb(), "models": results,
        "keras_reference": KERAS_REFERENCE,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
