"""Shared by the benchmark scripts: where the data is, how results are written."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"


def archive_path() -> Path | None:
    """$SEQLAB_IMDB_ARCHIVE, else the copy beside the checkout, else None (download)."""
    given = os.environ.get("SEQLAB_IMDB_ARCHIVE")
    if given:
        return Path(given)
    return SHARED_ARCHIVE if SHARED_ARCHIVE.is_file() else None


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far. Linux's VmHWM starts afresh at exec; ru_maxrss
    would carry over the peak of the process that started this one (pytest, say)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    import torch  # here, so that keras_worker.py (no torch in its Python) can import this module

    return {"python": sys.version.split()[0], "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def write_results(name: str, data: dict) -> Path:
    """bench/results/NAME.json (scripts name --quick results NAME-quick, so they never replace a full result)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
