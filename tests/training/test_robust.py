"""Training that cannot go on well stops with one clear line and keeps what was good: a diverged
loss or gradient, a malformed checkpoint, an output or cache that takes no files."""

import json

import pytest
import torch

from seqlab.cli.exit_codes import ExitCode
from seqlab.errors import RunError
from seqlab.models import build_model
from seqlab.training.checkpoint import Checkpointer, load_checkpoint
from seqlab.training.fit import Callback, TrainConfig, Trainer

TINY = ["--epochs", "1", "--batch-size", "64", "--embedding-dim", "8", "--hidden-size", "4", "--maxlen", "60"]


def _data(csv_folder) -> list[str]:
    return ["--data", str(csv_folder / "train.csv"), "--test-data", str(csv_folder / "test.csv")]


@pytest.mark.slow  # trains through the command (seconds)
def test_a_diverging_run_stops_in_one_line_and_saves_no_run(synthetic_csv, tmp_path, seqlab_here):
    out = tmp_path / "runs" / "lstm"
    result = seqlab_here("train", "lstm", *TINY, *_data(synthetic_csv), "--learning-rate", "1e38", "--out", str(out))
    assert result.returncode == ExitCode.RUN
    stderr = result.stderr.decode()
    assert "training diverged at epoch 1" in stderr and "--learning-rate" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert [p.name for p in (tmp_path / "runs").iterdir() if not p.name.endswith(".checkpoint")] == []


class Poison(Callback):
    """Makes the weights NaN after batch `at`, as a diverging update would."""

    def __init__(self, at: int):
        self.at = at

    def on_batch_end(self, trainer: Trainer) -> None:
        if trainer.state.step == self.at:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))


def _trainer(synthetic, callbacks, **training) -> Trainer:
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, hidden_size=4)
    config = TrainConfig(epochs=1, batch_size=64, validation_split=0.0, **training)
    return Trainer(model, synthetic.train, None, config, callbacks=callbacks)


def test_diverged_weights_are_never_checkpointed_the_last_good_one_stays(synthetic, tmp_path, one_thread):
    directory = tmp_path / "run.checkpoint"
    trainer = _trainer(synthetic, [Poison(at=3), Checkpointer(directory, {}, every_steps=1)])
    with pytest.raises(RunError, match="training diverged after batch 3 of epoch 1: the weights .* no longer finite"):
        trainer.fit()
    kept = load_checkpoint(directory)
    assert (kept.epoch, kept.step) == (0, 2)
    assert all(torch.isfinite(tensor).all() for tensor in kept.trainer_state["model"].values())


def test_an_infinite_gradient_stops_training_where_the_norm_is_computed(synthetic, one_thread):
    trainer = _trainer(synthetic, [], clip_norm=1.0)
    next(trainer.model.parameters()).register_hook(lambda gradient: gradient * float("inf"))
    with pytest.raises(RunError, match="batch 1: the gradients' norm became (inf|nan)"):
        trainer.fit()


@pytest.fixture
def checkpoint(synthetic, tmp_path, one_thread):
    directory = tmp_path / "run.checkpoint"
    _trainer(synthetic, [Checkpointer(directory, {}, every_steps=2)]).fit()
    return directory


@pytest.mark.parametrize("change, message", [
    (lambda state: {**state, "epoch": "1"}, "'epoch' must be a whole number"),
    (lambda state: {**state, "tensors": 3}, "'tensors' must be a string"),
    (lambda state: {**state, "trainer": {**state["trainer"], "state": {**state["trainer"]["state"], "step": -1}}},
     "'step' must be a whole number, 0 or more"),
    (lambda state: [state], "holds a list, not an object"),
])
def test_a_malformed_checkpoint_state_is_refused_naming_the_key(checkpoint, change, message):
    pointer = json.loads((checkpoint / "latest.json").read_text())
    path = checkpoint / pointer["state"]
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    with pytest.raises(RunError, match=message):
        load_checkpoint(checkpoint)


def test_a_checkpoint_state_linked_to_dev_zero_is_refused_not_read(checkpoint):
    state = checkpoint / json.loads((checkpoint / "latest.json").read_text())["state"]
    state.unlink()
    state.symlink_to("/dev/zero")
    with pytest.raises(RunError, match=rf"{state.name} is not a regular file"):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_an_output_that_takes_no_files_fails_before_the_data_is_read(tmp_path, seqlab_here, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "runs" / "lstm" if command == "train" else blocker / "runs"
    result = seqlab_here(command, "lstm", *TINY, "--data", str(tmp_path / "absent.csv"), "--out", str(out))
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.RUN, stderr
    assert "the output folder" in stderr and "not writable" in stderr and "absent.csv" not in stderr


def test_a_cache_that_takes_no_files_fails_before_the_data_is_read(tmp_path, seqlab_here, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SEQLAB_CACHE", str(blocker / "cache"))
    result = seqlab_here("train", "lstm", *TINY, "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r"))
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.RUN
    assert "the cache folder" in stderr and "SEQLAB_CACHE" in stderr and "absent.csv" not in stderr


def test_resume_of_a_run_whose_checkpoint_was_made_a_list_is_one_line(checkpoint, seqlab_here):
    (checkpoint / "latest.json").write_text("[]")
    result = seqlab_here("train", "--resume", str(checkpoint))
    assert result.returncode == ExitCode.RUN and b"Traceback" not in result.stderr
    assert b"latest.json holds a list, not an object" in result.stderr
