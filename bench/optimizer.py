"""Adam's step, PyTorch's per-tensor loop against its fused kernel, on the parameters of real models.

    python bench/optimizer.py            # the lecture's models and two zoo models, 30 rounds each
    python bench/optimizer.py --quick    # a few rounds (the test suite runs this)

Both optimizers get the same parameters and gradients and alternate, round by round, so a
noisy machine slows both alike; the table gives medians and their ratio. Threads: 1 by
default, as in training on CPU, where the optimizer runs while PyTorch's pool is held at one
thread for the batch shards (training/cpu.py). Prints a table and writes
bench/results/optimizer.json (optimizer-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results  # noqa: E402

from seqlab.models import build_model  # noqa: E402
from seqlab.training.fit import TrainConfig  # noqa: E402
from seqlab.training.optimizers import adam  # noqa: E402

# (label, registry name, model options): the lecture's three models and two from bench/zoo.py.
MODELS = [
    ("rnn (lecture)", "rnn", {}),
    ("lstm (lecture)", "lstm", {}),
    ("gru (lecture)", "gru", {}),
    ("bigru-attention (zoo)", "bigru-attention", {"vocab_size": 20_000, "embedding_dim": 128}),
    ("fasttext (zoo)", "fasttext", {"vocab_size": 20_000, "embedding_dim": 128}),
]


def time_steps(optimizer: torch.optim.Optimizer, steps: int) -> float:
    """Seconds per step."""
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2 steps; the lecture's RNN only")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads (training on CPU uses 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds, steps = (3, 2) if args.quick else (args.rounds, 5)
    models = MODELS[:1] if args.quick else MODELS

    rows, results = [], {}
    for label, name, options in models:
        torch.manual_seed(0)
        model = build_model(name, **options)
        timings: dict[str, list[float]] = {"loop": [], "fused": []}
        optimizers = {}
        for kind in timings:
            parameters = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
            for parameter in parameters:
                parameter.grad = torch.randn_like(parameter) * 1e-3
            config = TrainConfig()  # the lecture's Adam: lr 1e-3, eps 1e-7
            optimizers[kind] = (adam(parameters, config) if kind == "fused" else  # what training builds
                                torch.optim.Adam(parameters, lr=config.learning_rate, eps=config.adam_epsilon,
                                                 foreach=False))
            time_steps(optimizers[kind], 2)  # moments allocated, kernels warm
        for _ in range(rounds):
            for kind, optimizer in optimizers.items():
                timings[kind].append(time_steps(optimizer, steps) * 1000)
        if not optimizers["fused"].defaults["fused"]:
            raise SystemExit("this PyTorch has no fused Adam for CPU parameters (PyTorch 2.4 or later has)")
        count = sum(p.numel() for p in model.parameters())
        loop, fused = (statistics.median(timings[kind]) for kind in ("loop", "fused"))
        results[label] = {"model": name, "options": options, "parameters": count, "loop_ms": timings["loop"],
                          "fused_ms": timings["fused"], "median_loop_ms": loop, "median_fused_ms": fused,
                          "speedup": loop / fused}
        rows.append([label, f"{count:,}", f"{loop:.2f}", f"{fused:.2f}", f"{loop / fused:.1f}x"])
        print(" | ".join(rows[-1]), flush=True)

    print(markdown_table(["model", "parameters", "loop ms/step (median)", "fused ms/step (median)", "loop / fused"],
                         rows))
    path = write_results("optimizer-quick" if args.quick else "optimizer",
                         {"quick": args.quick, "threads": args.threads, "rounds": rounds, "steps_per_round": steps,
                          "models": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
