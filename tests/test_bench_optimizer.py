"""bench/optimizer.py --quick runs and writes its results (the speed figures themselves are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_optimizer_benchmark_quick_mode_writes_its_table_and_json():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "optimizer.py"), "--quick"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| model | parameters | loop ms/step (median) | fused ms/step (median) | loop / fused |" in result.stdout
    results = json.loads((ROOT / "bench" / "results" / "optimizer-quick.json").read_text())
    rnn = results["models"]["rnn (lecture)"]
    assert results["quick"] and rnn["parameters"] == 1_292_481
    assert len(rnn["loop_ms"]) == len(rnn["fused_ms"]) == 3 and rnn["speedup"] > 0
