"""Scale: a corpus larger than the in-memory path is meant for, prepared once, streamed through the LSTM.

    python bench/scale.py            # 2,000,000 synthetic reviews, 1,000 training steps
    python bench/scale.py --quick    # 10,000 reviews, 20 steps: checks the script runs (the tests run it)

1. Generates a synthetic corpus of reviews of varying length (Zipf-distributed words, a few
   sentiment-bearing words, lengths log-normal around 100 words) inside the preparation workers,
   and prepares it with `seqlab.text.prepared.prepare` (memory-mapped arrays): rows/s.
2. Trains the lecture's LSTM for --steps steps of 128 reviews, batches drawn across the whole
   corpus (one epoch's length-bucketed order), reading from the memory map: tokens/s and peak
   memory (resident set, mapped pages included) of every process, which must stay under 2 GB.
3. The first --scaling-steps steps (the same global batches) on 1 process (timed within step 2)
   and on 2 processes (torchrun, gloo, one thread each, each process a half of every batch),
   and on 1 process with one thread per core: the scaling efficiency.

Prints a Markdown table and writes bench/results/scale.json (or scale-quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import markdown_table, peak_memory_mb, write_results  # noqa: E402

MEMORY_LIMIT_MB = 2048
WORDS = 30_000  # distinct synthetic words
SENTIMENT = 200  # the first SENTIMENT words after the common ones lean positive, the next SENTIMENT negative


@dataclass(frozen=True)
class SyntheticReviews:
    """`count` reviews generated on demand, the same for the same (seed, position range)."""

    count: int
    seed: int = 0

    def __len__(self) -> int:
        return self.count

    def read(self, start: int, stop: int) -> tuple[list[str], np.ndarray]:
        rng = np.random.default_rng([self.seed, start, stop])
        words = [f"w{i}" for i in range(WORDS)]
        size = stop - start
        labels = rng.integers(0, 2, size=size)
        lengths = np.clip(rng.lognormal(np.log(100), 0.7, size=size).astype(np.int64), 3, 1_500)
        texts = []
        for label, length in zip(labels, lengths):
            ids = (rng.zipf(1.3, size=length) - 1) % WORDS  # (length,) common words most often
            marked = rng.random(length) < 0.05  # a few words carry the sentiment
            ids[marked] = 1_000 + rng.integers(0, SENTIMENT, size=int(marked.sum())) + (0 if label else SENTIMENT)
            texts.append(" ".join(map(words.__getitem__, ids.tolist())))
        return texts, labels


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def prepare_corpus(count: int, directory: Path, workers: int, chunk_size: int) -> dict:
    from seqlab.data.sources import DataSource
    from seqlab.pipeline import prepare
    from seqlab.text import prepared

    started = time.perf_counter()
    prepared.prepare({"train": SyntheticReviews(count)}, directory, name=f"synthetic-{count}", chunk_size=chunk_size,
                     workers=workers, vocabulary_texts=min(count, 100_000))
    seconds = time.perf_counter() - started
    corpus = prepare(DataSource(data=str(directory))).corpus
    tokens = int(corpus.train.lengths.sum())
    disk = sum(path.stat().st_size for path in directory.rglob("*.npy"))
    return {"texts": len(corpus.train), "tokens": tokens, "seconds": seconds, "rows_per_s": count / seconds,
            "disk_mb": disk / 2**20, "workers": workers, "peak_memory_mb": max(peak_memory_mb(), children_peak_mb())}


def train_worker(prepared: Path, steps: int, result: Path) -> None:
    """One process of a training run (launched by torchrun): `steps` global batches from the memory map."""
    import torch

    from seqlab.data.sources import DataSource
    from seqlab.models import build_model
    from seqlab.pipeline import prepare
    from seqlab.training import distributed
    from seqlab.training.batches import collate
    from seqlab.training.fit import TrainConfig

    group = distributed.current()
    corpus = prepare(DataSource(data=str(prepared))).corpus
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=corpus.encoder.vocab_size)
    trainer = distributed.make_trainer(model, corpus.train, None, TrainConfig(batch_size=128, seed=0))
    batches = trainer.epoch_batches(1)[:steps]
    model.train()
    tokens, losses, elapsed, started = 0, [], [], time.perf_counter()
    for indices in batches:
        batch = collate(corpus.train, indices)
        loss, _ = trainer.train_step(batch)
        losses.append(loss)
        tokens += int(batch.lengths.sum())
        elapsed.append((time.perf_counter() - started, tokens))  # (seconds, tokens) after each step
    seconds = time.perf_counter() - started
    totals = [float(tokens), peak_memory_mb(), seconds]
    if group:
        gathered = torch.tensor(totals, dtype=torch.float64)
        torch.distributed.all_reduce(gathered[:1], op=torch.distributed.ReduceOp.SUM)
        maxima = gathered[1:].clone()
        torch.distributed.all_reduce(maxima, op=torch.distributed.ReduceOp.MAX)
        totals = [float(gathered[0]), float(maxima[0]), float(maxima[1])]
    if distributed.is_main():
        result.write_text(json.dumps({
            "processes": group.world_size if group else 1, "threads": torch.get_num_threads(), "steps": len(batches),
            "seconds": totals[2], "tokens": totals[0], "tokens_per_s": totals[0] / totals[2],
            "peak_memory_mb_per_process": totals[1], "elapsed": elapsed, "first_loss": losses[0], "last_loss": float(np.mean(losses[-20:])),
        }))
    distributed.shutdown()


def train(prepared: Path, steps: int, processes: int, threads: int, work: Path) -> dict:
    result = work / f"train-{processes}x{threads}-{steps}.json"
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               str(Path(__file__).resolve()), "--train-worker", "--prepared", str(prepared), "--steps", str(steps),
               "--result", str(result)]
    subprocess.run(command, env=environment, check=True)
    return json.loads(result.read_text())


def strip(run: dict | None) -> dict | None:
    """A run's figures without its per-step clock."""
    return None if run is None else {key: value for key, value in run.items() if key != "elapsed"}


def first_steps(run: dict, steps: int) -> dict:
    """The figures of a run's first `steps` steps, from its per-step clock."""
    seconds, tokens = run["elapsed"][steps - 1]
    return {**run, "steps": steps, "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 reviews, 20 steps, 10 scaling steps")
    parser.add_argument("--texts", type=int, help="synthetic reviews (default 2,000,000)")
    parser.add_argument("--steps", type=int, help="training steps streamed from the corpus (default 1,000)")
    parser.add_argument("--scaling-steps", type=int, help="steps timed on 1 and 2 processes (default 300)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="preparation processes")
    parser.add_argument("--work", type=Path, help="folder for the prepared corpus (default: a temporary one, removed)")
    parser.add_argument("--train-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepared", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_worker:
        return train_worker(args.prepared, args.steps, args.result)

    texts = args.texts or (10_000 if args.quick else 2_000_000)
    steps = args.steps or (20 if args.quick else 1_000)
    scaling_steps = args.scaling_steps or (10 if args.quick else 300)
    work = args.work or Path(tempfile.mkdtemp(prefix="seqlab-scale-"))
    try:
        preparation = prepare_corpus(texts, work / "prepared", args.workers, 5_000 if args.quick else 50_000)
        streaming = train(work / "prepared", steps, processes=1, threads=1, work=work)
        one = first_steps(streaming, scaling_steps)  # the same batches as the 2-process run
        two = train(work / "prepared", scaling_steps, processes=2, threads=1, work=work)
        one_all_cores = None if args.quick else train(work / "prepared", scaling_steps, 1, os.cpu_count() or 1, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    speedup = one["seconds"] / two["seconds"]
    peak = max(preparation["peak_memory_mb"], streaming["peak_memory_mb_per_process"], two["peak_memory_mb_per_process"])
    rows = [
        ["prepare", f"{preparation['texts']:,} reviews, {preparation['tokens']:,} tokens, {preparation['workers']} workers",
         f"{preparation['seconds']:.1f}", f"{preparation['rows_per_s']:,.0f} rows/s", f"{preparation['peak_memory_mb']:.0f}"],
        ["train, 1 process x 1 thread", f"{streaming['steps']:,} steps of 128", f"{streaming['seconds']:.1f}",
         f"{streaming['tokens_per_s']:,.0f} tokens/s", f"{streaming['peak_memory_mb_per_process']:.0f}"],
    ]
    for label, run in (("1 process x 1 thread", one), ("2 processes x 1 thread", two),
                       (f"1 process x {os.cpu_count()} threads", one_all_cores)):
        if run:
            rows.append([f"scaling, {label}", f"{run['steps']:,} steps", f"{run['seconds']:.1f}",
                         f"{run['tokens_per_s']:,.0f} tokens/s", f"{run['peak_memory_mb_per_process']:.0f}"])
    print(markdown_table(["stage", "work", "seconds", "rate", "peak MB / process"], rows))
    print(f"\n2 processes vs 1: speedup {speedup:.2f}x, scaling efficiency {speedup / 2:.0%}; "
          f"prepared corpus {preparation['disk_mb']:.0f} MB on disk; peak memory {peak:.0f} MB "
          f"({'under' if peak < MEMORY_LIMIT_MB else 'OVER'} the {MEMORY_LIMIT_MB} MB limit); "
          f"loss {streaming['first_loss']:.3f} -> {streaming['last_loss']:.3f}; load average {os.getloadavg()[0]:.1f}")
    path = write_results("scale-quick" if args.quick else "scale", {
        "quick": args.quick, "preparation": preparation,
        "streaming": strip(streaming),
        "scaling": {"one_process": strip(one), "two_processes": strip(two), "one_process_all_cores": strip(one_all_cores),
                    "speedup": speedup, "efficiency": speedup / 2},
        "peak_memory_mb": peak, "memory_limit_mb": MEMORY_LIMIT_MB, "load_average_at_end": os.getloadavg(),
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
