"""bench/data.py --quick runs and writes its results (the speed figures themselves are not asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_data_benchmark_quick_mode_writes_its_table_and_json():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "data.py"), "--quick"], capture_output=True,
                            text=True, timeout=300, env={**os.environ})
    assert result.returncode == 0, result.stderr
    assert "| data | step | texts | seconds (median) | range | texts/s |" in result.stdout
    assert "prepare, from cache" in result.stdout
    results = json.loads((ROOT / "bench" / "results" / "data-quick.json").read_text())
    assert results["quick"] and results["csv_read"]["rows"] == 20_000
    assert results["csv_read"]["rows_per_second"] > 0 and results["csv_read"]["peak_mb"] > 0
    assert [step["step"] for step in results["steps"]][:2] == ["read", "tokenize + encode"]
    assert all(len(step["runs"]) == 5 and min(step["runs"]) <= step["seconds"] <= max(step["runs"])
               for step in results["steps"][:4])  # the median of five runs each
