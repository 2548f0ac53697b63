"""The `seqlab` command, run as a user runs it."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from seqlab.cli import app

runner = CliRunner()


def seqlab(*args, stdin: bytes | None = None):
    """Run the installed entry point in a subprocess: what a user sees, tracebacks included."""
    return subprocess.run([sys.executable, "-m", "seqlab.cli", *args], input=stdin, capture_output=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


@pytest.fixture(scope="module")
def compared(tmp_path_factory, archive):
    out = tmp_path_factory.mktemp("compare")
    result = runner.invoke(app, ["compare", "rnn", "lstm", "--archive", str(archive), "--train-size", "800",
                                 "--test-size", "200", "--epochs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_compare_runs_the_whole_lecture_flow(compared):
    out, output = compared
    for text in ("Decoded sample review", 'Model: "rnn"', 'Model: "lstm"', "Epoch 2/2", "val_accuracy",
                 "Test results", "Predictions on random test reviews", "true:"):
        assert text in output
    assert (out / "sequence_models_history.png").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == ["rnn", "lstm"]
    assert len(results["samples"]) == 5
    for name in ("rnn", "lstm"):
        assert len(json.loads((out / name / "history.json").read_text())["val_loss"]) == 2


@pytest.mark.slow
def test_compare_is_reproducible_with_a_seed(compared, archive, tmp_path):
    out, _ = compared
    result = runner.invoke(app, ["compare", "rnn", "--archive", str(archive), "--train-size", "800",
                                 "--test-size", "200", "--epochs", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first = json.loads((out / "rnn" / "history.json").read_text())
    second = json.loads((tmp_path / "rnn" / "history.json").read_text())
    assert first["loss"] == second["loss"] and first["val_accuracy"] == second["val_accuracy"]


def test_predict_arguments_stdin_and_json(synthetic_run):
    result = seqlab("predict", str(synthetic_run), "A superb film.", "Dreadful.", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [row["text"] for row in rows] == ["A superb film.", "Dreadful."]
    assert all(row["label"] in ("negative", "positive") for row in rows)
    piped = seqlab("predict", str(synthetic_run), "--json", stdin="A superb film.\nDreadful.\n".encode())
    assert [json.loads(line)["probability"] for line in piped.stdout.decode().splitlines()] == [r["probability"] for r in rows]


def test_predict_non_utf8_input_names_the_line(synthetic_run):
    result = seqlab("predict", str(synthetic_run), stdin=b"fine\n\xff\xfe broken\n")
    assert result.returncode == 2
    assert b"line 2" in result.stderr and b"--replace-invalid" in result.stderr and b"Traceback" not in result.stderr
    replaced = seqlab("predict", str(synthetic_run), "--replace-invalid", "--json", stdin=b"fine\n\xff\xfe broken\n")
    assert replaced.returncode == 0 and len(replaced.stdout.decode().splitlines()) == 2


@pytest.mark.slow
def test_evaluate_a_saved_run(compared, archive):
    out, _ = compared
    result = runner.invoke(app, ["evaluate", str(out / "lstm"), "--archive", str(archive), "--test-size", "200", "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["accuracy"] <= 1


def test_summary_shows_keras_parameter_counts():
    result = runner.invoke(app, ["summary", "lstm"])
    assert result.exit_code == 0
    assert "1,329,729" in result.output and "1,329,473" in result.output and "(None, 200, 128)" in result.output


@pytest.mark.parametrize("args,message", [
    (["summary", "transformers"], b"valid models: rnn, lstm"),
    (["predict", "no/such/run", "hi"], b"no run directory"),
    (["train", "lstm", "--archive", "missing.tar.gz"], b"IMDb archive not found"),
    (["train", "lstm", "--padding", "middle", "--archive", "missing.tar.gz"], b"padding must be 'pre' or 'post'"),
])
def test_bad_input_gets_a_message_not_a_traceback(args, message):
    result = seqlab(*args)
    assert result.returncode == 2
    assert message in result.stderr and b"Traceback" not in result.stderr
