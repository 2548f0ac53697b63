"""bench/scale.py runs (in --quick mode) so that it cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_scale_benchmark_quick():
    completed = subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--quick"], capture_output=True,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| prepare | 10,000 reviews" in completed.stdout
    assert "| scaling, 2 processes x 1 thread | 10 steps |" in completed.stdout
    results = json.loads((ROOT / "bench" / "results" / "scale-quick.json").read_text())
    assert results["preparation"]["texts"] == 10_000 and results["preparation"]["rows_per_s"] > 0
    assert results["streaming"]["steps"] == 20 and results["streaming"]["tokens_per_s"] > 0
    assert results["scaling"]["two_processes"]["processes"] == 2
    assert results["peak_memory_mb"] < results["memory_limit_mb"]
