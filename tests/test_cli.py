"""The `seqlab` command, run as a user runs it."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.cli.exit_codes import ExitCode

runner = CliRunner()


def seqlab(*args, stdin: bytes | None = None):
    """Run the installed entry point in a subprocess: what a user sees, tracebacks included."""
    return subprocess.run([sys.executable, "-m", "seqlab", *args], input=stdin, capture_output=True,
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


def test_predict_arguments_stdin_and_json(synthetic_run, seqlab_here):
    result = seqlab_here("predict", str(synthetic_run), "A superb film.", "Dreadful.", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [row["text"] for row in rows] == ["A superb film.", "Dreadful."]
    assert all(row["label"] in ("negative", "positive") for row in rows)
    piped = seqlab_here("predict", str(synthetic_run), "--json", stdin="A superb film.\nDreadful.\n".encode())
    assert [json.loads(line)["probability"] for line in piped.stdout.decode().splitlines()] == [r["probability"] for r in rows]


def test_predict_non_utf8_input_names_the_line(synthetic_run, seqlab_here):
    result = seqlab_here("predict", str(synthetic_run), stdin=b"fine\n\xff\xfe broken\n")
    assert result.returncode == ExitCode.DATA
    assert b"line 2" in result.stderr and b"--replace-invalid" in result.stderr and b"Traceback" not in result.stderr
    replaced = seqlab_here("predict", str(synthetic_run), "--replace-invalid", "--json", stdin=b"fine\n\xff\xfe broken\n")
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


@pytest.mark.parametrize("args,message,code", [
    (["summary", "transformers"], b"valid models: rnn, lstm", ExitCode.USAGE),
    (["predict", "no/such/run", "hi"], b"no run directory", ExitCode.RUN),
    (["predict", "org/not-cached-here", "hi"], b"no Hub repo org/not-cached-here in the local Hugging Face cache",
     ExitCode.RUN),
    (["train", "lstm", "--archive", "missing.tar.gz"], b"IMDb archive not found", ExitCode.DATA),
    (["train", "lstm", "--padding", "middle", "--archive", "missing.tar.gz"], b"padding must be 'pre' or 'post'",
     ExitCode.USAGE),
    (["train", "lstm", "--no-such-option"], b"No such option", ExitCode.USAGE),
])
def test_bad_input_gets_a_message_not_a_traceback(args, message, code, seqlab_here):
    result = seqlab_here(*args)
    assert result.returncode == code
    assert message in result.stderr and b"Traceback" not in result.stderr


HEAVY = ("torch", "numpy", "matplotlib", "fastapi", "uvicorn", "sklearn", "scipy", "pandas", "pyarrow", "tokenizers",
         "gensim", "onnx", "onnxruntime", "safetensors",
         "pydantic")  # typer's validators, needed to run a command, not to show its help (cli/__init__.py)


def test_help_of_every_command_loads_no_heavy_module():
    """The deterministic form of "--help is instant": no torch, numpy, ... behind any help page."""
    script = """
import json, sys
from seqlab.cli import app
import typer.main
group = typer.main.get_command(app)
paths = [[]] + [[name] for name in group.commands]
paths += [[name, sub] for name, command in group.commands.items() for sub in getattr(command, "commands", {})]
for path in paths:
    app([*path, "--help"], standalone_mode=False)
print(json.dumps({"paths": paths, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))}))
"""
    result = subprocess.run([sys.executable, "-c", script, *HEAVY], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert ["train"] in report["paths"] and ["data", "prepare"] in report["paths"] and len(report["paths"]) >= 14
    assert report["heavy"] == []


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help_answers_quickly(args):
    """`seqlab --help` and a command's help answer in under 0.5 s. Counted in CPU seconds of the
    child process, which a busy machine stretches far less than wall time, and below which a quiet
    machine's wall time cannot go; the median of five runs is held to 0.5 s (importing torch alone
    costs several)."""
    import resource
    import statistics

    def cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    seconds = []
    for _ in range(5):
        before = cpu_seconds()
        result = seqlab(*args)
        seconds.append(cpu_seconds() - before)
        assert result.returncode == 0 and b"Usage" in result.stdout
    assert statistics.median(seconds) < 0.5, seconds


def test_version_and_the_exit_codes_in_the_help(seqlab_here):
    import seqlab as package
    from seqlab.cli.exit_codes import MEANINGS

    result = seqlab_here("--version")
    assert result.returncode == 0 and result.stdout.decode().strip() == f"seqlab {package.__version__}"
    text = " ".join(seqlab_here("--help").stdout.decode().split())
    for code in ExitCode:
        assert f"{int(code)} {MEANINGS[code]}" in text.split("Exit codes:")[1]


def test_each_kind_of_error_has_its_exit_code():
    from seqlab.cli.exit_codes import exit_code
    from seqlab.errors import ConfigError, DataError, RunError, SeqlabError

    assert [exit_code(kind("x")) for kind in (ConfigError, DataError, RunError, SeqlabError)] == [
        ExitCode.USAGE, ExitCode.DATA, ExitCode.RUN, ExitCode.FAILED]
    assert len(set(ExitCode)) == len(ExitCode)  # no two kinds share a code


def test_ctrl_c_exits_130_with_a_message(monkeypatch):
    from seqlab.cli import predict

    def interrupted(replace_invalid):
        raise KeyboardInterrupt

    monkeypatch.setattr(predict, "_read_stdin_lines", interrupted)
    result = runner.invoke(app, ["explain", "any/run", "-"])
    assert result.exit_code == ExitCode.INTERRUPTED == 130
    assert "interrupted" in result.output


def test_a_usage_error_exits_2_and_names_the_option(seqlab_here):
    result = seqlab_here("predict")
    assert result.returncode == ExitCode.USAGE and b"Missing argument" in result.stderr
