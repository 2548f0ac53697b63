"""bench/probe.py: a linear probe of a pretrained body against the same body with random weights (slow: real reviews)."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_probe_scores_a_pretrained_body_and_its_random_floor(archive, tmp_path):
    from seqlab.data.config import DataSource
    from seqlab.pretraining import PretrainRecipe, default_training, pretrain
    from seqlab.text.config import EncoderConfig

    recipe = PretrainRecipe(model={"hidden_size": 16, "embedding_dim": 8, "cutoffs": [500]},
                            encoder=EncoderConfig(maxlen=60, max_features=2_000), data=DataSource(archive=str(archive)),
                            texts=300, training=replace(default_training(), validation_split=0.0))
    lm = pretrain(recipe, tmp_path / "lm").run_directory
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "probe.py"), str(lm), "--train-size", "200",
                             "--test-size", "200", "--maxlen", "60", "--max-features", "2000"],
                            capture_output=True, text=True, timeout=600,
                            env={"SEQLAB_IMDB_ARCHIVE": str(archive), "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(ROOT / "src"), "SEQLAB_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "| random |" in result.stdout and "| pretrained |" in result.stdout
    assert "word vectors for" in result.stdout  # the pretrained body was copied in
    data = json.loads((ROOT / "bench" / "results" / "probe.json").read_text())
    assert (data["train"], data["test"]) == (200, 200) and data["body"]["hidden_size"] == 16
    scores = [score for body in data["accuracy"].values() for kind in body.values() for score in kind.values()]
    assert len(scores) == 2 * 4 * 3 and all(0 <= score <= 1 for score in scores)
    assert data["accuracy"]["random"] != data["accuracy"]["pretrained"]
