"""bench/vs_fasttext.py --quick runs and writes seqlab's figures (and fastText's, where the bench extra is installed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_vs_fasttext_quick_mode_writes_both_sides_or_says_why_not(archive):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "vs_fasttext.py"), "--quick"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    results = json.loads((ROOT / "bench" / "results" / "vs_fasttext-quick.json").read_text())
    seqlab = results["medians"]["seqlab"]
    assert results["quick"] and results["train"] == 2_000 and results["test"] == 1_000
    assert seqlab["train_seconds"] > 0 and seqlab["reviews_per_second"] > 0
    assert 0.75 < seqlab["test_accuracy"] <= 1  # 0.85 on these 2,000 reviews: it learns, not just runs
    assert seqlab["quantized_bytes"] < 0.3 * seqlab["model_bytes"]
    assert abs(seqlab["quantized_accuracy"] - seqlab["test_accuracy"]) <= 0.01
    if results["fasttext_installed"]:
        words, ids = results["medians"]["fasttext"], results["medians"]["fasttext-ids"]
        assert words["train_seconds"] > 0 and ids["train_seconds"] > 0 and 0.5 < words["test_accuracy"] <= 1
        ratio = results["ratios"]["train_seconds seqlab/fasttext"]
        assert ratio == pytest.approx(seqlab["train_seconds"] / words["train_seconds"])  # against fastText on the words
        assert "| fasttext-ids |" in result.stdout
    else:
        assert "running seqlab's side only" in result.stdout and results["ratios"] == {}
