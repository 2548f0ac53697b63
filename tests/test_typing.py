"""src/seqlab type-checks clean under mypy, with the settings of pyproject.toml's [tool.mypy]."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # mypy reads the whole package and its libraries' stubs (tens of seconds)
def test_mypy_reports_no_errors():
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout's seqlab, not an installed one
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
