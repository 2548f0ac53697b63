"""The data path: reading, tokenizing and encoding, cold and from the cache; streaming a large CSV.

    python bench/data.py            # IMDb's 50,000 reviews; a generated 1,000,000-row CSV
    python bench/data.py --quick    # a generated 5,000-row corpus; a 20,000-row CSV (the test suite runs this)

Prints a table and writes bench/results/data.json (data-quick.json with --quick). Reading
the CSV runs in a fresh process, so its peak memory is that of reading alone; "kept" is
the peak above the process's memory before reading, compared with the file's size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import archive_path, markdown_table, write_results  # noqa: E402

WORDS = 20_000  # distinct synthetic words


def generate_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Review-like rows: 5-150 words drawn with Zipf-like frequencies, three classes, some quoting."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{number}" for number in range(WORDS)] + ['"quoted"', "comma,", "line\nbreak"])
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    labels = np.array(["negative", "mixed", "positive"])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for start in range(0, rows, 10_000):
            count = min(10_000, rows - start)
            lengths = rng.integers(5, 150, count)
            words = vocabulary[rng.choice(len(vocabulary), int(lengths.sum()), p=weights)]
            cuts = np.cumsum(lengths)[:-1]
            texts = [" ".join(chunk) for chunk in np.split(words, cuts)]
            writer.writerows(zip(range(start, start + count), texts, labels[rng.integers(0, 3, count)]))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024


def current_memory_mb() -> float:
    """Resident memory of this process now (Linux)."""
    return _status_mb("VmRSS:")


def high_water_mb() -> float:
    """Peak resident memory of this program. Not ru_maxrss: that carries over the parent's
    peak through fork + exec, so a child of a large process would report the parent's."""
    return _status_mb("VmHWM:")


def read_only(path: Path) -> dict:
    """Run in a child process: read the table, report rows/s and memory."""
    from seqlab.data.files import read_table

    before = current_memory_mb()
    started = time.perf_counter()
    table = read_table(path)
    seconds = time.perf_counter() - started
    peak = high_water_mb()
    return {"rows": len(table), "seconds": seconds, "rows_per_second": len(table) / seconds,
            "megabytes_per_second": path.stat().st_size / 1e6 / seconds, "file_mb": path.stat().st_size / 1e6,
            "peak_mb": peak, "before_mb": before, "kept_mb": peak - before}


def measure_read(path: Path) -> dict:
    child = subprocess.run([sys.executable, __file__, "--read-only", str(path)], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure_prepare(source, label: str, repeats: int) -> list[dict]:
    """Seconds to read + tokenize + encode (a cold cache), then to load the same from the cache:
    the median of `repeats` runs each (this machine's timings swing by a fifth from run to run)."""
    from seqlab.data.sources import load_corpus
    from seqlab.pipeline import prepare
    from seqlab.text.cache import encode_corpus
    from seqlab.text.encoder import EncoderConfig

    caches = Path(os.environ["SEQLAB_CACHE"])
    timings: dict[str, list[float]] = {}
    texts = 0
    for repeat in range(repeats):
        started = time.perf_counter()
        corpus = load_corpus(source)
        timings.setdefault("read", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        encode_corpus(corpus, EncoderConfig())
        timings.setdefault("tokenize + encode", []).append(time.perf_counter() - started)
        texts = len(corpus.train) + len(corpus.test)
        del corpus
        os.environ["SEQLAB_CACHE"] = str(caches / f"cold-{repeat}")  # an empty cache each time
        started = time.perf_counter()
        cold = prepare(source)
        timings.setdefault("prepare, cold cache (read, encode, summary, store)", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        warm = prepare(source)
        timings.setdefault("prepare, from cache", []).append(time.perf_counter() - started)
        assert not cold.from_cache and warm.from_cache
    return [{"data": label, "step": step, "texts": texts, "seconds": float(np.median(runs)), "runs": runs,
             "texts_per_second": texts / float(np.median(runs))} for step, runs in timings.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small generated inputs, to check the script runs")
    parser.add_argument("--rows", type=int, help="rows of the generated CSV (default 1,000,000; 20,000 with --quick)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each step; the median is reported")
    parser.add_argument("--read-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_only:
        print(json.dumps(read_only(args.read_only)))
        return

    from seqlab.data.sources import DataSource

    rows = args.rows or (20_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="seqlab-bench-") as scratch:
        scratch = Path(scratch)
        os.environ["SEQLAB_CACHE"] = str(scratch / "cache")  # a cold cache of our own
        if args.quick:
            generate_csv(scratch / "corpus.csv", 5_000, seed=1)
            source, label = DataSource(data=str(scratch / "corpus.csv")), "generated 5,000"
        else:
            source, label = DataSource(data="imdb", archive=str(archive_path()) if archive_path() else None), "IMDb"
        steps = measure_prepare(source, label, repeats=args.repeats)
        started = time.perf_counter()
        big = scratch / "big.csv"
        generate_csv(big, rows)
        generated = time.perf_counter() - started
        read = measure_read(big)
    steps.append({"data": f"CSV {rows:,} rows, {read['file_mb']:,.0f} MB", "step": "read_table (streamed)",
                  "texts": read["rows"], "seconds": read["seconds"], "texts_per_second": read["rows_per_second"]})
    table = [[s["data"], s["step"], f"{s['texts']:,}", f"{s['seconds']:.2f}",
              f"{min(s['runs']):.2f}-{max(s['runs']):.2f}" if "runs" in s else "", f"{s['texts_per_second']:,.0f}"]
             for s in steps]
    print(markdown_table(["data", "step", "texts", "seconds (median)", "range", "texts/s"], table))
    print(f"\nCSV read: {read['megabytes_per_second']:.0f} MB/s; peak memory {read['peak_mb']:,.0f} MB "
          f"({read['before_mb']:,.0f} MB before reading, so {read['kept_mb']:,.0f} MB for a {read['file_mb']:,.0f} MB "
          f"file: {read['kept_mb'] / read['file_mb']:.2f}x its size). Generating it took {generated:.1f} s.")
    path = write_results("data-quick" if args.quick else "data", {
        "quick": args.quick, "steps": steps, "csv_read": read, "csv_generate_seconds": generated,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
