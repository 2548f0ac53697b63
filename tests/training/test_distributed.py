"""Training on 2 processes (torchrun, gloo, CPU) against 1, and resuming after a process dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from seqlab.data.sources import DataSource
from seqlab.pipeline import prepare as pipeline_prepare
from seqlab.pipeline import train_model
from seqlab.text.encoder import EncoderConfig
from seqlab.text.prepared import InMemorySource, prepare
from seqlab.training.distributed import shard_batches
from seqlab.training.fit import TrainConfig, epoch_batches

WORKER = Path(__file__).with_name("ddp_worker.py")
sys.path.insert(0, str(WORKER.parent))
from ddp_worker import MODEL, SETTINGS  # noqa: E402


def environment() -> dict[str, str]:
    # One thread per process: the cores are shared.
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def torchrun(*arguments: str, nproc: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *arguments]
    return subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def prepared(imdb_corpus, tmp_path_factory):
    corpus = imdb_corpus.subset(2_000, 600, seed=1)
    sources = {"train": InMemorySource(corpus.train.texts, corpus.train.labels),
               "test": InMemorySource(corpus.test.texts, corpus.test.labels)}
    return prepare(sources, tmp_path_factory.mktemp("ddp") / "prepared", EncoderConfig(max_features=5_000),
                   chunk_size=700, workers=2)


@pytest.fixture(scope="module")
def two_process_run(prepared, tmp_path_factory):
    """`seqlab train --nproc 2`, uninterrupted."""
    out = tmp_path_factory.mktemp("two") / "run"
    settings = [f"--{key.replace('_', '-')}={value}" for key, value in {**SETTINGS, **MODEL}.items()]
    command = [sys.executable, "-m", "seqlab", "train", "lstm", "--nproc", "2", "--prepared", str(prepared),
               "--out", str(out), *settings]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_every_process_gets_an_equal_length_bucketed_share_of_each_batch():
    lengths = np.random.default_rng(0).integers(1, 200, size=1_001)
    config = TrainConfig(batch_size=32, seed=3)
    batches = epoch_batches(lengths, config, epoch=2)
    shares = [shard_batches(batches, rank, 3) for rank in range(3)]
    assert len({len(share) for share in shares}) == 1
    for batch, *parts in zip(batches, *shares):
        assert sorted(np.concatenate(parts)) == sorted(batch)  # together, each global batch exactly once
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    # The last global batch (1,001 = 31 * 32 + 9 texts) splits too; one smaller than the world is dropped.
    assert len(shard_batches([np.arange(2)], 0, 3)) == 0


@pytest.mark.slow
def test_two_processes_match_one_within_a_point(prepared, two_process_run):
    _, single = train_model("lstm", pipeline_prepare(DataSource(data=str(prepared))).corpus, TrainConfig(**SETTINGS), **MODEL)
    history = json.loads((two_process_run / "history.json").read_text())
    metrics = json.loads((two_process_run / "metrics.json").read_text())
    assert single.history["val_accuracy"][-1] > 0.6  # it learned something worth comparing
    assert abs(history["val_accuracy"][-1] - single.history["val_accuracy"][-1]) <= 0.01
    assert abs(metrics["test"]["accuracy"] - single.test["accuracy"]) <= 0.01
    assert history["val_loss"][-1] == pytest.approx(single.history["val_loss"][-1], abs=0.005)
    # Metrics cover the whole validation set (400 reviews), not one process's share.
    config = json.loads((two_process_run / "config.json").read_text())
    assert config["data"]["validation"] == 400


@pytest.mark.slow
def test_a_dead_process_fails_the_run_and_a_restart_resumes_from_the_checkpoint(prepared, two_process_run, tmp_path):
    out, checkpoint = tmp_path / "run", tmp_path / "checkpoint"
    died = torchrun(str(WORKER), str(prepared), str(out), str(checkpoint), "--die-at", "35")
    assert died.returncode != 0
    assert "exitcode" in died.stderr and "17" in died.stderr  # torchrun names the process that failed
    assert not out.exists()  # no run directory from a failed run
    state = json.loads((checkpoint / "state.json").read_text())["train"]
    assert (state["epoch"], state["step"]) == (1, 30)  # the last checkpoint before process 1 died

    resumed = torchrun(str(WORKER), str(prepared), str(out), str(checkpoint))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = safetensors.torch.load_file(out / "model.safetensors")
    expected = safetensors.torch.load_file(two_process_run / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6)
    history = json.loads((out / "history.json").read_text())
    assert history["val_accuracy"] == pytest.approx(
        json.loads((two_process_run / "history.json").read_text())["val_accuracy"], abs=1e-6)
