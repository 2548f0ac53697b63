"""steps.csv / epochs.csv and TensorBoard scalars, written by callbacks and consistent after a resume."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest

import seqlab
from seqlab.errors import ConfigError
from seqlab.recipes import Recipe, resume, train_recipe
from seqlab.training.checkpoint import load_checkpoint
from seqlab.training.fit import Callback
from seqlab.training.logs import STEP_COLUMNS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


@pytest.fixture
def small_csv(tmp_path, synthetic_corpus, monkeypatch):
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    small = synthetic_corpus.subset(160, 40, seed=2)
    path = tmp_path / "train.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((t, small.label_names[int(l)]) for t, l in zip(small.train.texts, small.train.labels))
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: value for key, value in row.items() if key != "seconds"} for row in csv.DictReader(handle)]


class _Crash(Callback):
    def on_batch_end(self, trainer) -> None:
        if (trainer.state.epoch + 1, trainer.state.step) == (2, 5):
            raise RuntimeError("simulated crash")


def _recipe(path: Path) -> Recipe:
    return Recipe("fasttext", {"embedding_dim": 8}, data=seqlab.DataSource(data=str(path)), checkpoint_every=3,
                  training=seqlab.TrainConfig(epochs=2, batch_size=16, schedule="cosine", validation_split=0.2))


@pytest.mark.slow
def test_csv_logs_after_a_resume_equal_an_uninterrupted_runs(small_csv, tmp_path, monkeypatch):
    from seqlab import pipeline

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    callbacks = pipeline.training_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "training_callbacks", lambda trainer: [*callbacks(trainer), _Crash()])
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_recipe(_recipe(small_csv), killed)
    assert (load_checkpoint(killed).epoch, load_checkpoint(killed).step) == (1, 3)
    written = _rows(killed.with_name("killed.checkpoint") / "steps.csv")
    assert [(r["epoch"], r["step"]) for r in written][-2:] == [("2", "4"), ("2", "5")]  # logged past the checkpoint
    resume(killed)
    train_recipe(_recipe(small_csv), whole)
    steps, epochs = _rows(killed / "steps.csv"), _rows(killed / "epochs.csv")
    assert steps == _rows(whole / "steps.csv") and epochs == _rows(whole / "epochs.csv")
    batches = len(steps) // 2
    assert [(int(r["epoch"]), int(r["step"])) for r in steps] == [(e, s) for e in (1, 2) for s in range(1, batches + 1)]
    assert list(csv.reader(open(killed / "steps.csv")))[0] == list(STEP_COLUMNS)
    rates = [float(r["learning_rate"]) for r in steps]
    assert rates[0] == pytest.approx(1e-3) and rates == sorted(rates, reverse=True)  # cosine, per batch
    assert [r["epoch"] for r in epochs] == ["1", "2"] and {"val_loss", "learning_rate"} <= set(epochs[0])
    history = seqlab.load(killed).run.history
    assert [float(r["loss"]) for r in epochs] == pytest.approx(history["loss"], rel=1e-5)
    assert not killed.with_name("killed.checkpoint").exists()


def test_python_api_runs_get_logs_without_leaving_scratch_folders(synthetic, tmp_path):
    _, result = seqlab.train_model("fasttext", synthetic, seqlab.TrainConfig(epochs=1, batch_size=128), out=tmp_path / "run",
                                   embedding_dim=8)
    assert len(_rows(tmp_path / "run" / "steps.csv")) == 4 and len(_rows(tmp_path / "run" / "epochs.csv")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="the tensorboard extra is optional")
def test_tensorboard_scalars_per_step_and_epoch(synthetic, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = seqlab.TrainConfig(epochs=2, batch_size=128, tensorboard=str(tmp_path / "tb"))
    seqlab.train_model("fasttext", synthetic, config, out=tmp_path / "run", embedding_dim=8)
    events = EventAccumulator(str(tmp_path / "tb" / "fasttext"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"step/loss", "step/accuracy", "step/learning_rate", "epoch/val_loss"} <= tags
    assert [event.step for event in events.Scalars("step/loss")] == list(range(1, 9))
    assert [event.step for event in events.Scalars("epoch/loss")] == [4, 8]


def test_tensorboard_without_the_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"--tensorboard needs the tensorboard extra: pip install 'seqlab\[tensorboard\]'"):
        seqlab.TrainConfig(tensorboard="runs/tb")


@pytest.mark.slow
def test_the_callback_example_in_the_docs_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    [block] = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    namespace: dict = {}
    exec(compile(block, str(DOCS), "exec"), namespace)
    printed = capsys.readouterr().out
    epochs = len(namespace["result"].history["loss"])
    assert 1 <= epochs < 30 and f"stopped after {epochs} epochs" in printed  # the callback stopped it
    assert namespace["stopper"].batches == epochs * 4 and (tmp_path / "runs" / "stop-early" / "steps.csv").is_file()
    assert seqlab.Callback is Callback
