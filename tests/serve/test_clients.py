"""The standard Open Inference Protocol clients, unmodified and with their defaults, against `seqlab serve`.

tritonclient (http sync and aio, grpc) and kserve's REST and gRPC clients talk to a real `seqlab serve`
process on loopback (HTTP and --grpc-port). kserve runs in a subprocess of its own: its
generated protobuf module and tritonclient's register the same `inference.*` names in the
default descriptor pool, so the two cannot be imported into one process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from http.client import HTTPConnection

import numpy as np
import pytest

from seqlab.predict import load

pytest.importorskip("tritonclient.http")
REVIEWS = ["A wonderful, moving film with a superb cast.", "Dull, predictable and far too long.",
           "Ça va, sans plus ☺"]
PORTS_WAIT = 90  # seconds for `seqlab serve` to load the model and listen


class Served:
    def __init__(self, process: subprocess.Popen, port: int, grpc_port: int):
        self.process, self.port, self.grpc_port = process, port, grpc_port
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served(served_runs, unused_port_pair):
    port, grpc_port = unused_port_pair
    process = subprocess.Popen([sys.executable, "-m", "seqlab.cli", "serve", f"lstm={served_runs[0]}", "--port",
                                str(port), "--grpc-port", str(grpc_port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + PORTS_WAIT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, f"seqlab serve did not answer within {PORTS_WAIT} s"
                time.sleep(0.2)
        yield Served(process, port, grpc_port)
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def unused_port_pair() -> tuple[int, int]:
    """Two distinct free loopback ports (both held while chosen)."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return first.getsockname()[1], second.getsockname()[1]


@pytest.fixture(scope="module")
def expected(served_runs):
    """The Predictor's answers for REVIEWS: labels and probabilities (negative, positive)."""
    predictor = load(served_runs[0])
    predictions = predictor.predict(REVIEWS)
    labels = [p.label for p in predictions]
    return labels, np.array([[p.probabilities[n] for n in predictor.label_names] for p in predictions], np.float32)


def _text_input(module, binary_data: bool = True):
    """REVIEWS as the BYTES input "text" (binary_data: only the HTTP client has the choice; gRPC's is raw bytes)."""
    text = module.InferInput("text", [len(REVIEWS)], "BYTES")
    values = np.array(REVIEWS, dtype=object)
    if module.__name__.startswith("tritonclient.http"):
        text.set_data_from_numpy(values, binary_data=binary_data)
    else:
        text.set_data_from_numpy(values)
    return text


def _check(result, expected, outputs=("label", "probabilities", "tokens", "truncated")):
    labels, probabilities = expected
    if "label" in outputs:
        # BYTES come back as bytes from binary data, as str from JSON (tritonclient's own conversions)
        assert [value.decode() if isinstance(value, bytes) else value for value in result.as_numpy("label")] == labels
    if "probabilities" in outputs:
        np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, atol=1e-6)
    if "truncated" in outputs:
        assert result.as_numpy("truncated").dtype == np.bool_ and not result.as_numpy("truncated").any()
    if "tokens" in outputs:
        assert result.as_numpy("tokens").dtype == np.int64 and (result.as_numpy("tokens") > 3).all()


@pytest.mark.slow  # a real `seqlab serve` process
def test_tritonclient_http_sync_with_its_defaults(served, expected):
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{served.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("lstm")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("lstm")
    assert metadata["platform"] == "pytorch" and metadata["inputs"][0]["datatype"] == "BYTES"
    # Defaults: binary BYTES input (Inference-Header-Content-Length, no Content-Type), all outputs binary.
    _check(client.infer("lstm", [_text_input(http)]), expected)
    # JSON input; one output binary, one JSON, as each requested output says.
    outputs = [http.InferRequestedOutput("label", binary_data=True),
               http.InferRequestedOutput("probabilities", binary_data=False)]
    result = client.infer("lstm", [_text_input(http, binary_data=False)], outputs=outputs, request_id="r7",
                          model_version="1")
    _check(result, expected, ("label", "probabilities"))
    response = result.get_response()
    assert response["id"] == "r7" and [o["name"] for o in response["outputs"]] == ["label", "probabilities"]
    assert "data" in response["outputs"][1] and "binary_data_size" in response["outputs"][0]["parameters"]
    with pytest.raises(http.InferenceServerException, match="unknown model 'nope'"):
        client.infer("nope", [_text_input(http)])
    with pytest.raises(http.InferenceServerException, match="does not implement that extension"):
        client.infer("lstm", [_text_input(http)], outputs=[http.InferRequestedOutput("probabilities", class_count=1)])
    client.close()


@pytest.mark.slow  # a real `seqlab serve` process
def test_tritonclient_http_aio_with_its_defaults(served, expected):
    import tritonclient.http.aio as aio

    async def scenario():
        client = aio.InferenceServerClient(f"127.0.0.1:{served.port}")
        try:
            assert await client.is_model_ready("lstm")
            results = await asyncio.gather(*[client.infer("lstm", [_text_input(aio)]) for _ in range(4)])
            json_result = await client.infer("lstm", [_text_input(aio, binary_data=False)],
                                             outputs=[aio.InferRequestedOutput("label", binary_data=False)])
        finally:
            await client.close()
        return results, json_result

    results, json_result = asyncio.run(scenario())
    for result in results:
        _check(result, expected)
    _check(json_result, expected, ("label",))


@pytest.mark.slow  # a real `seqlab serve` process
def test_tritonclient_grpc(served, expected):
    import tritonclient.grpc as grpc_client

    client = grpc_client.InferenceServerClient(f"127.0.0.1:{served.grpc_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("lstm")
    assert client.get_server_metadata().name == "seqlab"
    metadata = client.get_model_metadata("lstm", as_json=True)
    assert metadata["platform"] == "pytorch" and [o["name"] for o in metadata["outputs"]] == [
        "label", "probabilities", "tokens", "truncated"]
    _check(client.infer("lstm", [_text_input(grpc_client)], request_id="g1"), expected)
    only = client.infer("lstm", [_text_input(grpc_client)], outputs=[grpc_client.InferRequestedOutput("probabilities")])
    assert [o.name for o in only.get_response().outputs] == ["probabilities"]
    _check(only, expected, ("probabilities",))
    with pytest.raises(grpc_client.InferenceServerException) as unknown:
        client.infer("nope", [_text_input(grpc_client)])
    assert unknown.value.status() == "StatusCode.NOT_FOUND" and "served models: lstm" in unknown.value.message()
    wrong = grpc_client.InferInput("text", [1], "FP32")
    wrong.set_data_from_numpy(np.zeros(1, np.float32))
    with pytest.raises(grpc_client.InferenceServerException) as bad:
        client.infer("lstm", [wrong])
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT" and "BYTES" in bad.value.message()
    client.close()


KSERVE = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

def request(name, texts, binary):
    text = InferInput("text", [len(texts)], "BYTES")
    text.set_data_from_numpy(np.array(texts, dtype=object), binary_data=binary)
    return InferRequest("lstm", [text], request_id=name)

def answer(response):
    outputs = {output.name: output.as_numpy().tolist() for output in response.outputs}
    outputs["label"] = [label.decode() if isinstance(label, bytes) else label for label in outputs["label"]]
    return {"id": response.id, **outputs}

async def main(url, grpc_address, texts):
    rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    grpc = InferenceGRPCClient(grpc_address, timeout=60)
    answers = {}
    for name, binary in (("json", False), ("binary", True)):
        answers["rest " + name] = answer(await rest.infer(url, request(name, texts, binary), model_name="lstm"))
        answers["grpc " + name] = answer(await grpc.infer(request(name, texts, binary)))
    answers["ready"] = [await rest.is_server_live(url), await rest.is_model_ready(url, "lstm"),
                        await grpc.is_model_ready("lstm")]
    await rest.close()
    await grpc.close()
    print(json.dumps(answers))

asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
"""


@pytest.mark.slow  # a real `seqlab serve` process
def test_kserve_rest_and_grpc_clients(served, expected):
    if importlib.util.find_spec("kserve") is None:  # found, not imported here (see the module's docstring)
        pytest.skip("kserve is not installed (it is in the test extra)")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(KSERVE), served.url,
                             f"127.0.0.1:{served.grpc_port}", json.dumps(REVIEWS)],
                            capture_output=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    answers = json.loads(result.stdout.decode().strip().splitlines()[-1])
    labels, probabilities = expected
    for name in ("rest json", "rest binary", "grpc json", "grpc binary"):
        assert answers[name]["id"] == name.split()[1] and answers[name]["label"] == labels, name
        np.testing.assert_allclose(np.array(answers[name]["probabilities"]).reshape(-1, 2), probabilities, atol=1e-6)
    assert answers["ready"] == [True, True, True]


def _metric(text: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.slow  # a real `seqlab serve` process
def test_metrics_count_requests_errors_latency_and_batches(served):
    import tritonclient.grpc as grpc_client
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{served.port}")
    client.infer("lstm", [_text_input(http)])
    with pytest.raises(http.InferenceServerException):
        client.infer("nope", [_text_input(http)])
    grpc = grpc_client.InferenceServerClient(f"127.0.0.1:{served.grpc_port}")
    grpc.infer("lstm", [_text_input(grpc_client)])
    with urllib.request.urlopen(f"{served.url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    infer = "/v2/models/{name}/infer"
    assert _metric(text, "seqlab_requests_total", protocol="http", endpoint=infer, code="200") >= 1
    assert _metric(text, "seqlab_request_errors_total", protocol="http", endpoint=infer, code="404") >= 1
    assert _metric(text, "seqlab_request_errors_total", protocol="http", code="200") == 0
    assert _metric(text, "seqlab_requests_total", protocol="grpc", endpoint="ModelInfer", code="OK") >= 1
    assert _metric(text, "seqlab_request_duration_seconds_count", protocol="http", endpoint=infer) >= 2
    assert _metric(text, "seqlab_batch_size_texts_sum", model="lstm") >= 2 * len(REVIEWS)
    assert _metric(text, "seqlab_batch_size_texts_count", model="lstm") >= 2
    assert "seqlab_queue_depth_requests" in text and "seqlab_model_call_duration_seconds_bucket" in text
    grpc.close()
    client.close()


def _post(served: Served, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """POST with exactly these headers (urllib would add a form Content-Type to a body sent without one)."""
    connection = HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow  # a real `seqlab serve` process
def test_json_bodies_need_no_json_content_type_and_bad_binary_bodies_get_400(served):
    path = "/v2/models/lstm/infer"
    body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["Superb."]}]}).encode()
    for headers in ({}, {"Content-Type": "application/octet-stream"}, {"Content-Type": "application/json"}):
        status, answer = _post(served, path, body, headers)
        assert status == 200 and json.loads(answer)["outputs"][0]["data"] == ["positive"], (headers, answer)
    status, answer = _post(served, path, body, {"Content-Type": "text/plain"})
    assert status == 415

    def binary(elements: list[bytes], declared: int | None = None, extra: bytes = b"") -> tuple[int, str]:
        raw = b"".join(len(e).to_bytes(4, "little") + e for e in elements) + extra
        header = json.dumps({"inputs": [{"name": "text", "shape": [len(elements)], "datatype": "BYTES",
                                         "parameters": {"binary_data_size": declared or len(raw) - len(extra)}}]})
        status, answer = _post(served, path, header.encode() + raw,
                               {"Inference-Header-Content-Length": str(len(header))})
        return status, json.loads(answer).get("error", "")

    assert binary([b"Superb.", "Très bien".encode()])[0] == 200
    assert binary([b"\xff\xfe"]) == (400, "input 'text': element 0 is not UTF-8 text (invalid start byte at byte 0); "
                                          "send text encoded as UTF-8")
    status, message = binary([b"Superb."], declared=500)
    assert status == 400 and "runs past the end of the body" in message
    status, message = binary([b"Superb."], extra=b"left over")
    assert status == 400 and "9 bytes follow" in message
    status, answer = _post(served, path, b'{"inputs": []}', {"Inference-Header-Content-Length": "900"})
    assert status == 400 and "Inference-Header-Content-Length" in json.loads(answer)["error"]


@pytest.mark.slow  # a real `seqlab serve` process
def test_grpc_port_in_use_is_one_line_not_a_traceback(served, served_runs):
    result = subprocess.run([sys.executable, "-m", "seqlab.cli", "serve", str(served_runs[0]), "--port", "0",
                             "--grpc-port", str(served.grpc_port)], capture_output=True, timeout=120)
    errors = result.stderr.decode()
    assert result.returncode == 2 and f"cannot serve gRPC on 127.0.0.1:{served.grpc_port}" in errors
    assert "Traceback" not in errors


def test_onnx_backend_reports_triton_platform(served_runs):
    from fastapi.testclient import TestClient

    from seqlab.serve.app import create_app, load_predictors

    with TestClient(create_app(load_predictors([str(served_runs[0])], backend="onnx"))) as client:
        assert client.get("/v2/models/lstm").json()["platform"] == "onnxruntime_onnx"


def test_bundled_descriptor_is_the_compiled_proto(tmp_path):
    """proto/open_inference_grpc.binpb is what grpcio-tools makes of the .proto beside it."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    from importlib.resources import files

    from google.protobuf import descriptor_pb2

    folder = files("seqlab.serve") / "proto"
    out = tmp_path / "compiled.binpb"
    assert protoc.main(["protoc", f"-I{folder}", f"--descriptor_set_out={out}", "open_inference_grpc.proto"]) == 0
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    bundled = descriptor_pb2.FileDescriptorSet.FromString((folder / "open_inference_grpc.binpb").read_bytes())
    assert fresh == bundled
    assert [service.name for service in bundled.file[0].service] == ["GRPCInferenceService"]
