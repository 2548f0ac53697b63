"""One predictor everywhere: the Python API, the CLI, the server (v1 and v2) and ONNX give the same probabilities."""

import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from fastapi.testclient import TestClient

from seqlab.predict import load
from seqlab.serve.app import create_app, load_predictors

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # the CLI twice and a live server


@pytest.fixture(scope="module")
def texts(synthetic_corpus):
    chosen = list(synthetic_corpus.test.texts[::30][:10])
    return chosen + ["Short and sweet.", "", "word " * 500, "Ünïcödé — naïve café, 10/10!!"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab.cli", *args], capture_output=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_same_probabilities_from_api_cli_server_and_onnx(served_runs, live_server, texts):
    run = served_runs[0]
    api = load(run).predict(texts)
    api_probabilities = [p.probabilities for p in api]

    result = cli("predict", str(run), "--json", *texts)
    assert result.returncode == 0, result.stderr.decode()
    from_cli = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [row["probabilities"] for row in from_cli] == api_probabilities
    assert [row["truncated"] for row in from_cli] == [p.truncated for p in api]

    v1 = post(f"{live_server.url}/v1/predict", {"texts": texts, "model": "lstm"})["predictions"]
    assert [row["probabilities"] for row in v1] == api_probabilities
    infer = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    v2 = {o["name"]: o for o in post(f"{live_server.url}/v2/models/lstm/infer", infer)["outputs"]}
    assert np.array(v2["probabilities"]["data"]).reshape(len(texts), 2).tolist() == \
        [[p["negative"], p["positive"]] for p in api_probabilities]
    # (The page shows the same number: tests/serve/test_page.py compares it with the Python API.)

    onnx_api = load(run, backend="onnx").predict_proba(texts)
    expected = np.array([[p["negative"], p["positive"]] for p in api_probabilities])
    assert np.abs(onnx_api - expected).max() < 1e-4
    onnx_cli = cli("predict", str(run), "--onnx", "--json", *texts)
    assert onnx_cli.returncode == 0, onnx_cli.stderr.decode()
    rows = [json.loads(line)["probabilities"] for line in onnx_cli.stdout.decode().splitlines()]
    assert np.abs(np.array([[r["negative"], r["positive"]] for r in rows]) - onnx_api).max() == 0
    with TestClient(create_app(load_predictors([str(run)], backend="onnx"))) as client:
        body = client.post("/v1/predict", json={"texts": texts}).json()
    assert body["backend"] == "onnxruntime"
    served = np.array([[p["probabilities"]["negative"], p["probabilities"]["positive"]] for p in body["predictions"]])
    assert np.abs(served - expected).max() < 1e-4
