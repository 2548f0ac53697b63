"""`seqlab serve`, `seqlab explain` and `seqlab export` as a user runs them."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest


def seqlab(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab.cli", *args], capture_output=True, timeout=300,
                          env={**os.environ, "COLUMNS": "120"}, **options)


def test_serve_starts_on_loopback_and_answers(served_runs, unused_port):
    process = subprocess.Popen([sys.executable, "-m", "seqlab.cli", "serve", str(served_runs[0]), f"b={served_runs[1]}",
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


def test_explain_prints_coloured_words_and_json(served_runs):
    review = "An excellent film, but the ending was awful."
    result = seqlab("explain", str(served_runs[0]), review)
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode()
    assert "occlusion" in output and "Strongest words" in output and "excellent" in output
    data = json.loads(seqlab("explain", str(served_runs[0]), review, "--json", "--method", "integrated_gradients").stdout)
    assert data["method"] == "integrated_gradients" and [w["text"] for w in data["words"]][:2] == ["An", "excellent"]
    coloured = subprocess.run([sys.executable, "-c", "from seqlab.cli import main; main()", "explain",
                               str(served_runs[0]), review], capture_output=True, timeout=300,
                              env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"})
    assert b"\x1b[" in coloured.stdout  # words carry colour in a terminal


def test_export_command_writes_model_onnx(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = seqlab("export", str(run), "--format", "onnx")
    assert result.returncode == 0, result.stderr.decode()
    assert (run / "model.onnx").is_file() and b"largest probability difference" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["serve", "no/such/run"], b"no run directory"),
    (["export", "no/such/run"], b"no run directory"),
    (["explain", "no/such/run", "text"], b"no run directory"),
])
def test_bad_input_gets_a_message_not_a_traceback(args, message):
    result = seqlab(*args)
    assert result.returncode == 2 and message in result.stderr and b"Traceback" not in result.stderr


def test_missing_onnx_and_bad_method_are_explained(trained_run, served_runs):
    if not (trained_run / "model.onnx").exists():
        result = seqlab("predict", str(trained_run), "--onnx", "fine")
        assert result.returncode == 2 and b"seqlab export" in result.stderr
    result = seqlab("explain", str(served_runs[0]), "fine", "--method", "attention")
    assert result.returncode == 2 and b"no attention weights" in result.stderr and b"Traceback" not in result.stderr
    result = seqlab("serve", str(served_runs[0]), str(served_runs[0]))
    assert result.returncode == 2 and b"NAME=PATH" in result.stderr
