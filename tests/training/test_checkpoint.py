"""Checkpoints: exact resume after SIGKILL, atomic writes, damaged and pickled files refused."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import RunError
from seqlab.training.checkpoint import checkpoint_directory, load_checkpoint
from seqlab.training.fit import Callback

runner = CliRunner()
# Sized so that training takes a few seconds: long enough to be killed mid-epoch reliably.
TRAIN = ["lstm", "--epochs", "2", "--batch-size", "32", "--embedding-dim", "16", "--hidden-size", "16",
         "--maxlen", "100", "--max-features", "3000", "--checkpoint-every", "3"]


def _write_csv(path: Path, split, names, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for text, label in zip(split.texts[:rows], split.labels[:rows]):
            writer.writerow([text, names[int(label)]])


@pytest.fixture(scope="module")
def review_files(imdb_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("review-files")
    small = imdb_corpus.subset(800, 200, seed=3)
    _write_csv(folder / "train.csv", small.train, small.label_names, 800)
    _write_csv(folder / "test.csv", small.test, small.label_names, 200)
    return folder


def _assert_same_training(resumed: Path, whole: Path) -> None:
    """The resumed run ended with the uninterrupted run's weights and history, bit for bit."""
    a, b = (safetensors.torch.load_file(run / "model.safetensors") for run in (resumed, whole))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history_a, history_b = (json.loads((run / "history.json").read_text()) for run in (resumed, whole))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history_a[key] == history_b[key]


def _train_args(files: Path, out: Path) -> list[str]:
    return ["train", *TRAIN, "--data", str(files / "train.csv"), "--test-data", str(files / "test.csv"),
            "--out", str(out)]


def _wait_for_checkpoint(process: subprocess.Popen, directory: Path, epoch: int, step: int) -> dict:
    """Poll latest.json until training has reached (epoch, step); returns the pointer."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode()
        try:
            pointer = json.loads((directory / "latest.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            pointer = None
        if pointer and (pointer["epoch"], pointer["step"]) >= (epoch, step):
            return pointer
        time.sleep(0.002)
    raise AssertionError("training never reached the checkpoint")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights_bit_for_bit(review_files, tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen([sys.executable, "-m", "seqlab.cli", *_train_args(review_files, killed)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    try:
        pointer = _wait_for_checkpoint(process, checkpoint_directory(killed), epoch=1, step=3)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        process.kill()
        process.stdout.close()
    assert not killed.exists(), "a killed run must leave no half-written run directory"
    checkpoint = load_checkpoint(killed)
    assert checkpoint.epoch >= pointer["epoch"] and (checkpoint.epoch, checkpoint.step) != (2, 0)

    resumed = runner.invoke(app, ["train", "--resume", str(killed)])
    assert resumed.exit_code == 0, resumed.output
    assert "Epoch 2/2" in resumed.output and "Epoch 1/2" not in resumed.output
    assert not checkpoint_directory(killed).exists(), "checkpoints are removed once the run is saved"

    uninterrupted = runner.invoke(app, _train_args(review_files, whole))
    assert uninterrupted.exit_code == 0, uninterrupted.output
    _assert_same_training(killed, whole)
    metrics_a, metrics_b = (json.loads((run / "metrics.json").read_text()) for run in (killed, whole))
    assert metrics_a["test"] == metrics_b["test"]


@pytest.mark.slow
def test_resume_refuses_changed_data_and_extra_options(review_files, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    for name in ("train.csv", "test.csv"):
        (files / name).write_bytes((review_files / name).read_bytes())
    out = tmp_path / "run"
    args = _train_args(files, out)
    args[args.index("--epochs") + 1] = "1"
    args[args.index("--checkpoint-every") + 1] = "0"
    # Stop after the first epoch's checkpoint, as if the machine went down, by failing the run save.
    from seqlab import pipeline

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    original, pipeline.save_run = pipeline.save_run, crash
    try:
        assert "simulated crash" in str(runner.invoke(app, args).exception)
    finally:
        pipeline.save_run = original
    assert not out.exists() and load_checkpoint(out).epoch == 1

    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "unfinished run" in str(again.exception)
    extra = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "5"])
    assert "drop --epochs" in str(extra.exception)
    with open(files / "train.csv", "a", encoding="utf-8") as handle:
        handle.write("one more review,positive\n")
    changed = runner.invoke(app, ["train", "--resume", str(out)])
    assert "changed since the checkpoint" in str(changed.exception)


class _Crash(Callback):
    """Fails the run at (epoch under way, step), after the checkpoint of an earlier step, as a kill would."""

    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step

    def on_batch_end(self, trainer) -> None:
        if (trainer.state.epoch + 1, trainer.state.step) == (self.epoch, self.step):
            raise RuntimeError("simulated crash")


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_resume_is_exact_with_a_schedule_and_early_stopping(review_files, tmp_path, monkeypatch, schedule):
    """Oracle: the run never stopped. The schedule's position and early stopping's best figure
    and weights live in the callbacks and come back from the checkpoint."""
    from seqlab import pipeline

    options = ["--epochs", "3", "--schedule", schedule, "--patience", "1", "--restore-best", "--learning-rate", "0.01"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    args = [*_train_args(review_files, killed), *options]  # the later --epochs counts
    callbacks = pipeline.training_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "training_callbacks", lambda trainer: [*callbacks(trainer), _Crash(epoch=2, step=5)])
        assert "simulated crash" in str(runner.invoke(app, args).exception)
    checkpoint = load_checkpoint(killed)
    assert (checkpoint.epoch, checkpoint.step) == (1, 3)
    resumed = runner.invoke(app, ["train", "--resume", str(killed)])
    assert resumed.exit_code == 0, resumed.output
    uninterrupted = runner.invoke(app, [*_train_args(review_files, whole), *options])
    assert uninterrupted.exit_code == 0, uninterrupted.output
    _assert_same_training(killed, whole)
    configs = [json.loads((run / "config.json").read_text())["training"] for run in (killed, whole)]
    assert configs[0] == configs[1] and configs[0]["schedule"] == schedule and configs[0]["patience"] == 1


def test_the_second_checkpoint_options_are_refused_naming_their_replacements(tmp_path):
    gone = runner.invoke(app, ["train", "lstm", "--checkpoint", str(tmp_path / "c"), "--out", str(tmp_path / "r")])
    assert "--checkpoint is gone" in str(gone.exception) and "--resume" in str(gone.exception)
    renamed = runner.invoke(app, ["train", "lstm", "--checkpoint-steps", "50"])
    assert "--checkpoint-every 50" in str(renamed.exception)
    assert not (tmp_path / "r").exists()


# A child process trains on random ids, checkpoints once, then is killed while writing the second checkpoint.
CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, torch, safetensors.torch
    from seqlab.models import build_model
    from seqlab.text.cache import EncodedSplit
    from seqlab.text.encoder import Encoded
    from seqlab.training import checkpoint
    from seqlab.training.fit import Trainer, TrainConfig

    directory, stage = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 20, 64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    split = EncodedSplit(Encoded(rng.integers(3, 50, offsets[-1]).astype(np.int32), offsets, lengths),
                         rng.integers(0, 2, 64))
    torch.manual_seed(0)
    trainer = Trainer(build_model("gru", vocab_size=50, embedding_dim=8, hidden_size=8), split, None,
                      TrainConfig(epochs=2, batch_size=16))
    saver = checkpoint.Checkpointer(directory, {"note": "test"}, every_steps=2)
    trainer.callbacks.append(saver)
    real_save, real_replace = safetensors.torch.save_file, os.replace

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def half_written(tensors, path, metadata=None):
        if saver.generation == 2:
            real_save(tensors, path, metadata)
            with open(path, "r+b") as handle:
                handle.truncate(os.path.getsize(path) // 2)
            die()
        real_save(tensors, path, metadata)

    def replace(source, target):
        name = os.path.basename(target)
        if saver.generation == 2 and name.startswith(stage):
            die()
        real_replace(source, target)

    safetensors.torch.save_file = half_written if stage == "tensors" else real_save
    checkpoint.safetensors.torch.save_file = safetensors.torch.save_file
    os.replace = replace
    trainer.fit()
""")


@pytest.mark.slow  # a child process trains, then is killed
@pytest.mark.parametrize("stage", ["tensors", "latest"])  # half a tensors file; all written but the pointer
def test_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, stage):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory = tmp_path / "run.checkpoint"
    result = subprocess.run([sys.executable, str(script), str(directory), stage], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    leftovers = [p.name for p in directory.iterdir() if p.name.endswith(".tmp") or "00000002" in p.name]
    assert leftovers, "the second checkpoint was being written"
    checkpoint = load_checkpoint(directory)
    assert (checkpoint.generation, checkpoint.epoch, checkpoint.step) == (1, 0, 2)
    assert checkpoint.recipe == {"note": "test"}
    assert set(checkpoint.trainer_state) == {"model", "optimizer", "state", "random", "callbacks", "stop"}


def _one_checkpoint(tmp_path) -> Path:
    import numpy as np

    from seqlab.models import build_model
    from seqlab.text.cache import EncodedSplit
    from seqlab.text.encoder import Encoded
    from seqlab.training.checkpoint import Checkpointer
    from seqlab.training.fit import TrainConfig, Trainer

    lengths = np.full(8, 5)
    split = EncodedSplit(Encoded(np.arange(40, dtype=np.int32) % 20 + 3, np.arange(9) * 5, lengths), np.arange(8) % 2)
    trainer = Trainer(build_model("rnn", vocab_size=30, embedding_dim=4, hidden_size=4), split, None,
                      TrainConfig(epochs=1, batch_size=4), callbacks=[Checkpointer(tmp_path / "r.checkpoint", {})])
    trainer.fit()
    return tmp_path / "r.checkpoint"


def test_tampered_or_damaged_checkpoints_are_refused_clearly(tmp_path):
    directory = _one_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "r").epoch == 1
    tensors = next(directory.glob("tensors-*.safetensors"))
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(RunError, match="does not match the sha256"):
        load_checkpoint(directory)
    (directory / "latest.json").write_text("{not json")
    with pytest.raises(RunError, match="latest.json is not valid JSON"):
        load_checkpoint(directory)


def test_pickles_and_missing_checkpoints_are_refused(tmp_path):
    pickled = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, pickled)
    with pytest.raises(RunError, match="never unpickles"):
        load_checkpoint(pickled)
    with pytest.raises(RunError, match="no checkpoint to resume"):
        load_checkpoint(tmp_path / "nothing")


@pytest.mark.parametrize("written", ["today", "before the hash change"])
def test_resume_rebuilds_the_fasttext_hash_the_checkpoint_was_trained_with(synthetic_csv, tmp_path, monkeypatch,
                                                                           written):
    """A checkpoint's recipe keeps the n-gram hash; one written before `ngram_hash` existed lacks it and
    resumes with the "linear" hash it was trained with, not today's default."""
    from seqlab import pipeline

    out = tmp_path / "run"
    args = ["train", "fasttext", "--epochs", "2", "--batch-size", "16", "--maxlen", "60", "--checkpoint-every", "1",
            "--embedding-dim", "8", "--buckets", "1000",
            "--data", str(synthetic_csv / "train.csv"), "--test-data", str(synthetic_csv / "test.csv"), "--out", str(out)]
    callbacks = pipeline.training_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "training_callbacks", lambda trainer: [*callbacks(trainer), _Crash(epoch=2, step=2)])
        assert "simulated crash" in str(runner.invoke(app, args).exception)
    directory = checkpoint_directory(out)
    state = directory / json.loads((directory / "latest.json").read_text())["state"]
    document = json.loads(state.read_text())
    assert document["recipe"]["model_options"]["ngram_hash"] == "squared"
    if written != "today":
        del document["recipe"]["model_options"]["ngram_hash"]
        state.write_text(json.dumps(document))
    resumed = runner.invoke(app, ["train", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    expected = "squared" if written == "today" else "linear"
    assert json.loads((out / "config.json").read_text())["model"]["config"]["ngram_hash"] == expected
