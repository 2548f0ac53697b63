"""bench/serve.py --quick runs end to end: every backend and batching setting answers without errors, and the
load levels report throughput, shedding and health-probe latency."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serve.py"


@pytest.mark.slow
def test_serve_benchmark_quick(trained_run, tmp_path, archive):
    results = tmp_path / "serve.json"
    completed = subprocess.run([sys.executable, str(BENCH), "--run", str(trained_run), "--quick", "--results",
                                str(results)], capture_output=True, timeout=600)
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    assert b"| backend | batching |" in completed.stdout
    data = json.loads(results.read_text())
    assert {(r["backend"], r["batching"]) for r in data["results"]} == {
        (backend, batching) for backend in ("pytorch", "onnx") for batching in (True, False)}
    assert all(r["errors"] == 0 and r["completed"] == r["requests"] for r in data["results"])
    assert all(r["reviews_per_second"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 for r in data["results"])
    assert {(r["clients"], r["texts_per_request"]) for r in data["load"]} == {(8, 1), (64, 1), (8, 32), (64, 32)}
    for level in data["load"]:
        assert level["errors"] == 0 and level["completed"] + level["shed"] == level["requests"], level
        assert level["health_probes"] > 0 and level["health_errors"] == 0 and level["health_p99_ms"] > 0
    # at most 256 texts in flight (8 clients x 32, 64 x 1): far under both queue limits, none shed
    assert all(r["completed"] == r["requests"] for r in data["load"] if r["clients"] * r["texts_per_request"] <= 256)
    assert b"| clients | texts/request |" in completed.stdout
    assert not (trained_run / "model.onnx").exists()  # the benchmark exported into a copy, not the run


@pytest.mark.slow
def test_serve_benchmark_passes_server_options(trained_run, tmp_path, archive):
    """--serve-options reaches the server: with a body limit of 20,000 bytes every request of 32 reviews gets
    413 and every request of one review (at most ~14 KB) is answered; --no-matrix leaves out the matrix."""
    results = tmp_path / "serve.json"
    completed = subprocess.run([sys.executable, str(BENCH), "--run", str(trained_run), "--quick", "--no-matrix",
                                "--serve-options", "--max-body-bytes 20000", "--results", str(results)],
                               capture_output=True, timeout=600)
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    data = json.loads(results.read_text())
    assert data["results"] == [] and b"| backend | batching |" not in completed.stdout
    assert data["serve_options"] == ["--max-body-bytes", "20000"]
    for level in data["load"]:
        if level["texts_per_request"] == 1:
            assert level["errors"] == 0 and level["completed"] == level["requests"], level
        else:
            assert level["errors"] == level["requests"] and level["error_samples"][0].startswith("413"), level
