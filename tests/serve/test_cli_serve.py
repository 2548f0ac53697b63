"""`seqlab serve`, `seqlab explain` and `seqlab export` as a user runs them."""

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import fields

import pytest
from rich.style import Style

from seqlab.cli import main
from seqlab.cli.exit_codes import ExitCode
from seqlab.cli.output import explanation_text
from seqlab.explain import explain
from seqlab.predict import load
from seqlab.serve.config import ServeConfig


def seqlab_here(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The same entry point in this process (no interpreter startup): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["seqlab", *args])
    monkeypatch.setenv("COLUMNS", "120")
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_serve_starts_on_loopback_and_answers(served_runs, unused_port):
    process = subprocess.Popen([sys.executable, "-m", "seqlab", "serve", str(served_runs[0]), f"b={served_runs[1]}",
                                "--port", str(unused_port), "--onnx"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{unused_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as response:
                    assert json.loads(response.read()) == {"ready": True}
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "seqlab serve did not answer within 60 s"
                time.sleep(0.2)
        with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as response:
            models = json.loads(response.read())
        assert [(m["name"], m["backend"]) for m in models] == [("lstm", "onnxruntime"), ("b", "onnxruntime")]
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert b"serving lstm, b on http://127.0.0.1" in process.stdout.read()


def test_explain_prints_coloured_words_and_json(served_runs, capsys, monkeypatch):
    review = "An excellent film, but the ending was awful."
    code, output, errors = seqlab_here(capsys, monkeypatch, "explain", str(served_runs[0]), review)
    assert code == 0, errors
    assert "occlusion" in output and "Strongest words" in output and "excellent" in output
    code, output, _ = seqlab_here(capsys, monkeypatch, "explain", str(served_runs[0]), review, "--json",
                                  "--method", "integrated_gradients")
    data = json.loads(output)
    assert data["method"] == "integrated_gradients" and [w["text"] for w in data["words"]][:2] == ["An", "excellent"]
    explanation = explain(load(served_runs[0]), review, target="positive")
    text = explanation_text(explanation)
    assert explanation.words[1].score > 0 and explanation.words[-1].score < 0
    assert text.plain == review
    background = {text.plain[span.start:span.end]: Style.parse(str(span.style)).bgcolor.get_truecolor()
                  for span in text.spans}
    assert background["excellent"].green > background["excellent"].red  # green: toward positive
    assert background["awful"].red > background["awful"].green  # red: toward negative


def test_export_command_writes_model_onnx(synthetic_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    code, out, errors = seqlab_here(capsys, monkeypatch, "export", str(run), "--format", "onnx")
    assert code == 0, errors
    assert (run / "model.onnx").is_file() and "largest probability difference" in " ".join(out.split())  # rich wraps to the terminal


@pytest.mark.parametrize("args,message", [
    (["serve", "no/such/run"], "no run directory"),
    (["export", "no/such/run"], "no run directory"),
    (["explain", "no/such/run", "text"], "no run directory"),
])
def test_bad_input_gets_a_message_not_a_traceback(args, message, capsys, monkeypatch):
    code, _, errors = seqlab_here(capsys, monkeypatch, *args)
    assert code == ExitCode.RUN and message in errors and "Traceback" not in errors


def test_missing_onnx_and_bad_method_are_explained(synthetic_run, served_runs, capsys, monkeypatch):
    assert not (synthetic_run / "model.onnx").exists()
    code, _, errors = seqlab_here(capsys, monkeypatch, "predict", str(synthetic_run), "--onnx", "fine")
    assert code == ExitCode.RUN and "seqlab export" in errors
    code, _, errors = seqlab_here(capsys, monkeypatch, "explain", str(served_runs[0]), "fine", "--method", "attention")
    assert code == ExitCode.USAGE and "no attention weights" in errors
    code, _, errors = seqlab_here(capsys, monkeypatch, "serve", str(served_runs[0]), str(served_runs[0]))
    assert code == ExitCode.USAGE and "NAME=PATH" in errors


def test_every_serve_config_field_is_an_option_with_its_default_and_help():
    import typer

    from seqlab.cli import app

    command = typer.main.get_command(app).commands["serve"]
    options = {parameter.name: parameter for parameter in command.params}
    for field in fields(ServeConfig):
        assert field.name in options, f"ServeConfig.{field.name} has no `seqlab serve` option"
        assert options[field.name].default == field.default and options[field.name].help, field.name


def test_serve_options_reach_the_server_as_one_serve_config(served_runs, capsys, monkeypatch):
    from seqlab.serve import app as serving

    seen = {}
    monkeypatch.setattr(serving, "run_server", lambda predictors, config: seen.update(models=list(predictors),
                                                                                        config=config))
    code, out, errors = seqlab_here(capsys, monkeypatch, "serve", f"a={served_runs[0]}", "--max-connections", "7",
                                    "--no-batching", "--keep-alive-timeout-s", "2.5", "--grpc-port", "9001")
    assert code == 0, errors
    assert seen == {"models": ["a"], "config": ServeConfig(max_connections=7, batching=False, keep_alive_timeout_s=2.5,
                                                           grpc_port=9001)}
    assert "gRPC on 127.0.0.1:9001" in out
    code, _, errors = seqlab_here(capsys, monkeypatch, "serve", str(served_runs[0]), "--max-queued-texts", "10")
    assert code == ExitCode.USAGE and "max_queued_texts must be at least 256" in errors and "Traceback" not in errors
