import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_zoo_benchmark_quick_mode_runs(archive, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "zoo.py"), "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600,
                            env={"SEQLAB_IMDB_ARCHIVE": str(archive), "PATH": "/usr/bin:/bin",
                                 "SEQLAB_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "| model | maxlen | epochs |" in result.stdout and "tfidf-logreg (baseline)" in result.stdout
    data = json.loads((ROOT / "bench" / "results" / "zoo-quick.json").read_text())
    assert data["quick"] and not data["partial"]
    assert set(data["models"]) == {"lstm", "lstm, refit on all 1,000 x1", "bigru-attention", "transformer",
                                   "gru+word2vec"}
    assert all("test" in model for model in data["models"].values())
    refit = data["models"]["lstm, refit on all 1,000 x1"]
    assert refit["refit"] and refit["training"]["validation_split"] == 0 and refit["epochs"] == 1
    assert (tmp_path / "report.html").is_file()
