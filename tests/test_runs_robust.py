"""Run directories that are malformed or hold non-finite weights: one RunError naming the file, never a traceback."""

import json

import pytest
import safetensors.torch
import torch

from seqlab import runs
from seqlab.cli.exit_codes import ExitCode
from seqlab.errors import RunError
from seqlab.models import build_model
from seqlab.predict import load


@pytest.fixture
def saved_run(tmp_path, synthetic):
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, hidden_size=4)
    directory = tmp_path / "run"
    runs.save_run(directory, model, synthetic.encoder, synthetic.label_names, {"epochs": 0}, {"loss": []}, {})
    return directory


def _edit_config(directory, change):
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(change(config)))


@pytest.mark.parametrize("change, message", [
    (lambda config: [config], "config.json holds a list, not an object"),
    (lambda config: {**config, "label_names": []}, "'label_names' must be a list of at least two"),
    (lambda config: {**config, "label_names": "ab"}, "'label_names' must be a list of at least two"),
    (lambda config: {**config, "checksums": list(config["checksums"])}, "'checksums' must be an object mapping"),
    (lambda config: {**config, "model": "lstm"}, "'model' must be an object"),
])
def test_malformed_config_is_refused_naming_the_key(saved_run, change, message):
    _edit_config(saved_run, change)
    with pytest.raises(RunError, match=message):
        load(saved_run)


@pytest.mark.parametrize("name", ["history.json", "metrics.json"])
def test_run_files_linked_to_dev_zero_are_refused_not_read(saved_run, name):
    (saved_run / name).unlink()
    (saved_run / name).symlink_to("/dev/zero")
    with pytest.raises(RunError, match=f"{name} is not a regular file"):
        runs.load_run(saved_run)


def test_a_deeply_nested_history_is_one_error(saved_run):
    (saved_run / "history.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="nested too deeply"):
        runs.load_run(saved_run)


def _poison(directory):
    path = directory / "model.safetensors"
    state = safetensors.torch.load_file(path)
    name = next(key for key, tensor in state.items() if tensor.is_floating_point())
    state[name][0] = float("nan")
    safetensors.torch.save_file(state, path)
    _edit_config(directory, lambda config: {**config, "checksums": {}})  # as a run saved with NaN weights would be
    return name


def test_non_finite_weights_are_refused_naming_the_file_and_the_fix(saved_run):
    name = _poison(saved_run)
    with pytest.raises(RunError, match=rf"model.safetensors holds weights that are not finite .*{name}.*--learning-rate"):
        load(saved_run)


@pytest.mark.parametrize("command", [["predict", "{run}", "fine"], ["evaluate", "{run}", "--data", "{csv}"],
                                     ["explain", "{run}", "fine"], ["export", "{run}"]])
def test_commands_refuse_non_finite_weights_in_one_line(saved_run, synthetic_csv, seqlab_here, command):
    _poison(saved_run)
    result = seqlab_here(*[part.format(run=saved_run, csv=synthetic_csv / "test.csv") for part in command])
    assert result.returncode == ExitCode.RUN
    assert b"not finite" in result.stderr and b"Traceback" not in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) <= 3  # one message, wrapped to the console's width
