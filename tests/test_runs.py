import json

import numpy as np
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
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dim=16, hidden_size=8)
    directory = tmp_path / "run"
    runs.save_run(directory, model, synthetic.encoder, synthetic.label_names, {"epochs": 0}, {"loss": []}, {})
    return directory, model


def test_round_trip_gives_identical_probabilities(saved_run, synthetic, synthetic_corpus):
    directory, model = saved_run
    predictor = load(directory)
    texts = synthetic_corpus.test.texts[:50]
    assert np.array_equal(predictor.predict_proba(texts), _probabilities(model, synthetic.encoder, texts))
    assert sorted(p.name for p in directory.iterdir()) == [
        "README.md", "config.json", "encoder.json", "history.json", "metrics.json", "model.safetensors", "tokenizer.json"]


def test_incomplete_run_names_what_is_missing(saved_run):
    directory, _ = saved_run
    (directory / "model.safetensors").unlink()
    with pytest.raises(RunError, match="incomplete: missing model.safetensors"):
        load(directory)


def test_run_from_another_format_is_refused(saved_run):
    directory, _ = saved_run
    config = json.loads((directory / "config.json").read_text())
    config["format"] = 99
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="format 99"):
        load(directory)


def test_damaged_weights_are_reported(saved_run):
    directory, _ = saved_run
    (directory / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(RunError, match="damaged"):
        load(directory)


def test_weights_of_another_shape_are_reported(saved_run):
    directory, _ = saved_run
    safetensors.torch.save_file({"embedding.weight": torch.zeros(3, 3)}, directory / "model.safetensors")
    with pytest.raises(RunError, match="does not fit"):
        load(directory)


def test_pickled_files_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(RunError, match="never unpickles"):
        load(path)


def test_missing_run_directory_says_how_to_make_one(tmp_path):
    with pytest.raises(RunError, match="seqlab train"):
        load(tmp_path / "absent")


def test_failed_save_leaves_the_previous_run_intact(saved_run, synthetic, monkeypatch):
    directory, _ = saved_run
    before = (directory / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runs.safetensors.torch, "save_file", crash)
    with pytest.raises(OSError):
        runs.save_run(directory, build_model("rnn", vocab_size=10_000), synthetic.encoder,
                      synthetic.label_names, {}, {}, {})
    assert (directory / "model.safetensors").read_bytes() == before
    assert [p.name for p in directory.parent.iterdir()] == ["run"]  # no staging leftovers


def test_a_tampered_but_well_formed_file_is_detected(saved_run):
    directory, model = saved_run
    weights = safetensors.torch.load_file(directory / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1  # still valid safetensors of the right shapes
    safetensors.torch.save_file(weights, directory / "model.safetensors")
    with pytest.raises(RunError, match="model.safetensors does not match the sha256 recorded"):
        load(directory)


def test_a_run_saved_before_a_config_field_existed_keeps_what_it_meant(tmp_path, synthetic, synthetic_corpus):
    """A fasttext run whose config.json has no ngram_hash (saved before it existed) hashed its pairs the
    "linear" way, and loads so; a run saved now records its hash."""
    torch.manual_seed(0)
    model = build_model("fasttext", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, buckets=1_000_000,
                        ngram_hash="linear").eval()
    directory = tmp_path / "old"
    runs.save_run(directory, model, synthetic.encoder, synthetic.label_names, {"epochs": 0}, {"loss": []}, {})
    config = json.loads((directory / "config.json").read_text())
    assert config["model"]["config"]["ngram_hash"] == "linear"
    del config["model"]["config"]["ngram_hash"]
    (directory / "config.json").write_text(json.dumps(config))
    loaded = runs.load_run(directory).model
    assert loaded.config.ngram_hash == "linear"
    texts = synthetic_corpus.test.texts[:20]
    assert np.array_equal(load(directory).predict_proba(texts), _probabilities(model, synthetic.encoder, texts))
    assert build_model("fasttext").config.ngram_hash == "squared"


def _probabilities(model, encoder, texts):
    from seqlab.evaluation.metrics import probabilities
    from seqlab.evaluation.predicting import predict_logits
    from seqlab.text.cache import EncodedSplit

    split = EncodedSplit(encoder.encode(texts), np.zeros(len(texts), dtype=np.int64))
    return probabilities(predict_logits(model, split)).numpy()


# ---- malformed run files and non-finite weights: one RunError naming the file, never a traceback ----

@pytest.fixture
def run_directory(saved_run):
    return saved_run[0]


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
def test_malformed_config_is_refused_naming_the_key(run_directory, change, message):
    _edit_config(run_directory, change)
    with pytest.raises(RunError, match=message):
        load(run_directory)


@pytest.mark.parametrize("name", ["history.json", "metrics.json"])
def test_run_files_linked_to_dev_zero_are_refused_not_read(run_directory, name):
    (run_directory / name).unlink()
    (run_directory / name).symlink_to("/dev/zero")
    with pytest.raises(RunError, match=f"{name} is not a regular file"):
        runs.load_run(run_directory)


def test_a_deeply_nested_history_is_one_error(run_directory):
    (run_directory / "history.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="nested too deeply"):
        runs.load_run(run_directory)


def _poison(directory):
    path = directory / "model.safetensors"
    state = safetensors.torch.load_file(path)
    name = next(key for key, tensor in state.items() if tensor.is_floating_point())
    state[name][0] = float("nan")
    safetensors.torch.save_file(state, path)
    _edit_config(directory, lambda config: {**config, "checksums": {}})  # as a run saved with NaN weights would be
    return name


def test_non_finite_weights_are_refused_naming_the_file_and_the_fix(run_directory):
    name = _poison(run_directory)
    with pytest.raises(RunError, match=rf"model.safetensors holds weights that are not finite .*{name}.*--learning-rate"):
        load(run_directory)


@pytest.mark.parametrize("command", [["predict", "{run}", "fine"], ["evaluate", "{run}", "--data", "{csv}"],
                                     ["explain", "{run}", "fine"], ["export", "{run}"]])
def test_commands_refuse_non_finite_weights_in_one_line(run_directory, synthetic_csv, seqlab_here, command):
    _poison(run_directory)
    result = seqlab_here(*[part.format(run=run_directory, csv=synthetic_csv / "test.csv") for part in command])
    assert result.returncode == ExitCode.RUN
    assert b"not finite" in result.stderr and b"Traceback" not in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) <= 3  # one message, wrapped to the console's width
