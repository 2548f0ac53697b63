"""seqlab against the lecture's Keras code: same data, same models, same settings, one run.

    python bench/vs_keras.py                       # rnn, lstm, gru: 5 epochs on all of IMDb
    python bench/vs_keras.py --quick --no-keras    # a small check that the script runs

Each model is trained by Keras and by seqlab in turn (alternating, each in its own process so
peak memory is its own), on the same encoded reviews: the same vocabulary, the same shuffled
order, the same last-20% validation split. Keras gets the lecture's fixed (25000, 200) padded
arrays; seqlab gets the same token ids unpadded. Keras runs in the Python given by
--keras-python (default .venv-bench/bin/python; `make bench-keras-setup` creates it).
Prints a Markdown table and writes bench/results/vs_keras.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, archive_path, markdown_table, write_results  # noqa: E402

import seqlab  # noqa: E402
from seqlab.text.encoder import pad_sequences  # noqa: E402

HERE = Path(__file__).resolve().parent


def prepare_arrays(directory: Path, quick: bool) -> None:
    sizes = (2_000, 1_000) if quick else (None, None)
    corpus = seqlab.prepare(seqlab.DataSource(archive=str(archive_path()) if archive_path() else None), train_size=sizes[0], test_size=sizes[1]).corpus
    order = np.random.default_rng(113).permutation(len(corpus.train))  # keras.datasets.imdb shuffles with seed 113
    for name, split in (("train", corpus.train.take(order)), ("test", corpus.test)):
        encoded = split.encoded
        np.save(directory / f"{name}_ids.npy", encoded.ids)
        np.save(directory / f"{name}_offsets.npy", encoded.offsets)
        np.save(directory / f"{name}_labels.npy", split.labels)
        sequences = [encoded.sequence(i) for i in range(len(split))]
        np.save(directory / f"x_{name}.npy", pad_sequences(sequences, 200).astype(np.int32))
        np.save(directory / f"y_{name}.npy", split.labels.astype(np.float32))


def run_worker(python: str, script: str, data: Path, model: str, epochs: int, *options: str) -> dict:
    command = [python, str(HERE / script), "--data", str(data), "--model", model, "--epochs", str(epochs), *options]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{script} failed for {model}:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000/1,000 reviews, 1 epoch")
    parser.add_argument("--no-keras", action="store_true", help="only seqlab's side (when TensorFlow is absent)")
    parser.add_argument("--keras-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--bf16-training", nargs="*", default=["lstm", "gru"],
                        help="models also trained by seqlab with --precision bfloat16 (an extra row)")
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as temporary:
        data = Path(temporary)
        prepare_arrays(data, args.quick)
        for model in args.models:
            results[model] = {}
            if not args.no_keras:
                results[model]["keras"] = run_worker(args.keras_python, "keras_worker.py", data, model, epochs)
            results[model]["seqlab"] = run_worker(sys.executable, "seqlab_worker.py", data, model, epochs)
            if model in args.bf16_training:
                results[model]["seqlab bf16 training"] = run_worker(sys.executable, "seqlab_worker.py", data, model,
                                                                    epochs, "--precision", "bfloat16")

    rows = []
    for model, sides in results.items():
        theirs = sides.get("keras")
        ours = sides["seqlab"]

        def ratio(side: dict, key: str, invert: bool = False) -> str:
            if not theirs:
                return "n/a"
            a, b = (statistics.median(r[key]) if isinstance(r[key], list) else r[key] for r in (theirs, side))
            return f"{(b / a if invert else a / b):.2f}x"

        for side, r in sides.items():
            bf16 = (f"{r['bf16_reviews_per_second']:,.0f} / {r['bf16_latency_ms_p50']:.2f} / {r['bf16_test_accuracy']:.4f}"
                    if "bf16_reviews_per_second" in r else "")
            rows.append([model.upper(), side, f"{statistics.median(r['epoch_seconds']):.1f}",
                         f"{r['reviews_per_second']:,.0f}", f"{r['latency_ms_p50']:.2f}",
                         f"{r['train_peak_memory_mb']:,.0f}", f"{r['test_accuracy']:.4f}", bf16])
        bf16_ratio = f"{ours['bf16_reviews_per_second'] / theirs['reviews_per_second']:.2f}x" if theirs else "n/a"
        for name in ("seqlab", "seqlab bf16 training"):
            if name in sides and theirs:
                side = sides[name]
                rows.append([model.upper(), f"**Keras / {name}**", ratio(side, "epoch_seconds"),
                             ratio(side, "reviews_per_second", invert=True), ratio(side, "latency_ms_p50"),
                             ratio(side, "train_peak_memory_mb"), f"{side['test_accuracy'] - theirs['test_accuracy']:+.4f}",
                             bf16_ratio if name == "seqlab" else ""])
        speedups = {"training_speedup": ratio(ours, "epoch_seconds"),
                    "inference_speedup": ratio(ours, "reviews_per_second", invert=True),
                    "inference_speedup_bf16": bf16_ratio}
        if "seqlab bf16 training" in sides:
            speedups["training_speedup_bf16"] = ratio(sides["seqlab bf16 training"], "epoch_seconds")
        sides.update(speedups)
    header = ["model", "framework", "s/epoch (median)", "reviews/s (batch 512)", "batch-1 latency ms (p50)",
              "peak memory MB (training)", "test accuracy", "bf16: reviews/s / latency ms / accuracy"]
    print(markdown_table(header, rows))
    path = write_results("vs_keras-quick" if args.quick else "vs_keras", {"quick": args.quick, "epochs": epochs, "models": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
