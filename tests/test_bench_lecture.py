"""The benchmark scripts run (in --quick mode) so they cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_script(name: str, *args: str, env_archive) -> str:
    import os

    completed = subprocess.run([sys.executable, str(ROOT / "bench" / name), *args], capture_output=True, text=True,
                               env={**os.environ, "SEQLAB_IMDB_ARCHIVE": str(env_archive)}, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.mark.slow
def test_lecture_benchmark_quick(archive, tmp_path):
    output = run_script("lecture.py", "--quick", "--out", str(tmp_path), env_archive=archive)
    assert "| RNN |" in output and "| LSTM |" in output
    results = json.loads((ROOT / "bench" / "results" / "lecture-quick.json").read_text())
    assert results["quick"] and set(results["models"]) == {"rnn", "lstm"}


@pytest.mark.slow
def test_vs_keras_benchmark_quick_seqlab_side(archive):
    output = run_script("vs_keras.py", "--quick", "--no-keras", "--models", "lstm", env_archive=archive)
    assert "| LSTM | seqlab |" in output
    results = json.loads((ROOT / "bench" / "results" / "vs_keras-quick.json").read_text())
    assert results["models"]["lstm"]["seqlab"]["reviews_per_second"] > 0
