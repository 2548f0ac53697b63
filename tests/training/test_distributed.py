"""Training on 2 processes (torchrun, gloo, CPU): every data source and option through the one
training entry, and a dead process's run resumed on any number of processes."""

from __future__ import annotations

import csv
import json
import os
import shutil
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
from seqlab.text.encoder import EncoderConfig, TextEncoder
from seqlab.text.prepared import InMemorySource, prepare
from seqlab.training.checkpoint import checkpoint_directory
from seqlab.training.distributed import shard_batches
from seqlab.training.fit import TrainConfig, epoch_batches

WORKER = Path(__file__).with_name("ddp_worker.py")
SETTINGS = {"epochs": 2, "batch_size": 32, "validation_split": 0.2, "seed": 5}
MODEL = {"embedding_dim": 32, "hidden_size": 16}
OPTIONS = [f"--{key.replace('_', '-')}={value}" for key, value in {**SETTINGS, **MODEL}.items()]


def environment() -> dict[str, str]:
    # One thread per process: the cores are shared.
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200"}


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)


def seqlab(*arguments: str) -> subprocess.CompletedProcess:
    done = run([sys.executable, "-m", "seqlab", *arguments])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def torchrun(*arguments: str, nproc: int = 2) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                *arguments])


def weights(run_directory: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(run_directory / "model.safetensors")


def read(run_directory: Path, name: str) -> dict:
    return json.loads((run_directory / name).read_text())


@pytest.fixture(scope="module")
def prepared(imdb_corpus, tmp_path_factory):
    corpus = imdb_corpus.subset(2_000, 600, seed=1)
    sources = {"train": InMemorySource(corpus.train.texts, corpus.train.labels),
               "test": InMemorySource(corpus.test.texts, corpus.test.labels)}
    return prepare(sources, tmp_path_factory.mktemp("ddp") / "prepared", EncoderConfig(max_features=5_000),
                   chunk_size=700, workers=2)


@pytest.fixture(scope="module")
def two_process_run(prepared, tmp_path_factory):
    """`seqlab train --nproc 2` on a prepared corpus, uninterrupted."""
    out = tmp_path_factory.mktemp("two") / "run"
    seqlab("train", "lstm", "--nproc", "2", "--prepared", str(prepared), "--out", str(out), *OPTIONS)
    return out


VECTORS = {"movie": 0.5, "film": -0.25, "good": 1.0, "bad": -1.0, "the": 0.125}  # word -> first coordinate


@pytest.fixture(scope="module")
def csv_run(imdb_corpus, tmp_path_factory):
    """`seqlab train --nproc 2` on CSV files whose classes are not IMDb's, from a small vectors file."""
    folder = tmp_path_factory.mktemp("csv")
    small = imdb_corpus.subset(300, 100, seed=2)
    for name, split in (("train.csv", small.train), ("test.csv", small.test)):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["review", "verdict"])
            writer.writerows([text, ("awful", "great")[int(label)]] for text, label in zip(split.texts, split.labels))
    (folder / "vectors.txt").write_text("".join(f"{word} {first} " + " ".join(["0.0625"] * 7) + "\n"
                                                for word, first in VECTORS.items()))
    out = folder / "run"
    seqlab("train", "lstm", "--nproc", "2", "--data", str(folder / "train.csv"),
           "--test-data", str(folder / "test.csv"), "--text-column", "review", "--label-column", "verdict", "--embeddings", str(folder / "vectors.txt"),
           "--freeze-embeddings", "--epochs", "1", "--batch-size", "32", "--hidden-size", "8", "--maxlen", "80",
           "--max-features", "2000", "--out", str(out))
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
def test_two_processes_train_on_the_csv_they_are_given(csv_run):
    config = read(csv_run, "config.json")
    assert config["label_names"] == ["awful", "great"]  # not IMDb's neg/pos
    assert config["data"]["train"] + config["data"]["validation"] == 300 and config["data"]["test"] == 100
    assert config["data"]["source"].endswith("train.csv")


@pytest.mark.slow
def test_two_processes_start_from_the_embeddings_file(csv_run):
    config = read(csv_run, "config.json")
    assert config["model"]["config"]["embedding_dim"] == 8  # the file's dimension
    assert "vectors.txt" in config["data"]["embeddings"]
    vocabulary = TextEncoder.load(csv_run).tokenizer.get_vocab()
    table = weights(csv_run)["embedding.weight"]
    for word, first in VECTORS.items():  # frozen: exactly the file's values after training
        assert table[vocabulary[word]].tolist() == [first] + [0.0625] * 7


@pytest.mark.slow
def test_two_processes_match_one_within_a_point(prepared, two_process_run):
    _, single = train_model("lstm", pipeline_prepare(DataSource(data=str(prepared))).corpus, TrainConfig(**SETTINGS), **MODEL)
    history = read(two_process_run, "history.json")
    metrics = read(two_process_run, "metrics.json")
    assert single.history["val_accuracy"][-1] > 0.6  # it learned something worth comparing
    assert abs(history["val_accuracy"][-1] - single.history["val_accuracy"][-1]) <= 0.01
    assert abs(metrics["test"]["accuracy"] - single.test["accuracy"]) <= 0.01
    assert history["val_loss"][-1] == pytest.approx(single.history["val_loss"][-1], abs=0.005)
    # Metrics cover the whole validation set (400 reviews), not one process's share.
    assert read(two_process_run, "config.json")["data"]["validation"] == 400


def _assert_same_run(got: Path, expected: Path) -> None:
    mine, theirs = weights(got), weights(expected)
    assert mine.keys() == theirs.keys()
    for name in theirs:
        torch.testing.assert_close(mine[name], theirs[name], rtol=0, atol=1e-6)
    assert read(got, "history.json")["val_accuracy"] == pytest.approx(read(expected, "history.json")["val_accuracy"],
                                                                      abs=1e-6)


@pytest.mark.slow
def test_a_dead_process_fails_the_run_and_resume_continues_on_two_or_one(prepared, two_process_run, tmp_path):
    out = tmp_path / "run"
    died = torchrun(str(WORKER), "35", "train", "lstm", "--prepared", str(prepared), "--out", str(out),
                    "--checkpoint-every", "10", *OPTIONS)
    assert died.returncode != 0
    assert "exitcode" in died.stderr and "17" in died.stderr  # torchrun names the process that failed
    assert not out.exists()  # no run directory from a failed run
    latest = read(checkpoint_directory(out), "latest.json")
    assert (latest["epoch"], latest["step"]) == (1, 30)  # the last checkpoint before process 1 died
    elsewhere = tmp_path / "elsewhere" / "run"
    shutil.copytree(checkpoint_directory(out), checkpoint_directory(elsewhere))

    seqlab("train", "--resume", str(out), "--nproc", "2")  # the same process count: exactly the same run
    _assert_same_run(out, two_process_run)
    assert not checkpoint_directory(out).exists()

    seqlab("train", "--resume", str(elsewhere))  # one process: the same state, the last 20 steps undivided
    history, whole = read(elsewhere, "history.json"), read(two_process_run, "history.json")
    assert history["val_accuracy"][0] == whole["val_accuracy"][0]  # epoch 1 came from the checkpoint
    assert history["val_accuracy"][1] == pytest.approx(whole["val_accuracy"][1], abs=0.01)
    assert read(elsewhere, "config.json")["data"]["validation"] == 400
