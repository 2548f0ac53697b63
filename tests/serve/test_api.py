"""The HTTP API: /v1, the Open Inference Protocol (/v2), several models, limits that give 4xx, never 500."""

import asyncio
import http.client
import json

import pytest
from fastapi.testclient import TestClient

from seqlab.predict import load
from seqlab.serve.app import create_app, load_predictors
from seqlab.serve.config import ServeConfig

pytestmark = pytest.mark.usefixtures("one_thread")
REVIEWS = ["A wonderful, moving film with a superb cast.", "Dull, predictable and far too long.", ""]


@pytest.fixture(scope="module")
def client(served_runs):
    with TestClient(create_app(load_predictors([str(p) for p in served_runs]))) as client:
        yield client


def test_predict_gives_label_probabilities_tokens_and_truncation(client, served_runs):
    long_review = "great " * 400
    response = client.post("/v1/predict", json={"texts": REVIEWS + [long_review]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "lstm" and body["backend"] == "pytorch"
    expected = load(served_runs[0]).predict(REVIEWS + [long_review])
    assert body["predictions"] == [p.to_dict() for p in expected]
    assert body["predictions"][0]["label"] == "positive" and body["predictions"][1]["label"] == "negative"
    assert body["predictions"][-1]["truncated"] is True and body["predictions"][-1]["tokens"] == 200
    assert body["predictions"][0]["truncated"] is False


def test_several_models_by_name(client):
    models = client.get("/v1/models").json()
    assert [m["name"] for m in models] == ["lstm", "other"]
    assert models[0]["labels"] == ["negative", "positive"] and models[0]["test_accuracy"] > 0.75
    assert client.post("/v1/predict", json={"texts": ["fine"], "model": "other"}).json()["model"] == "other"


def test_open_inference_protocol(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "seqlab"
    metadata = client.get("/v2/models/lstm").json()
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities", "tokens", "truncated"]
    assert client.get("/v2/models/lstm/ready").json()["ready"] is True
    request = {"id": "r1", "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": REVIEWS[:2]}]}
    body = client.post("/v2/models/lstm/infer", json=request).json()
    assert body["model_name"] == "lstm" and body["id"] == "r1"
    outputs = {o["name"]: o for o in body["outputs"]}
    v1 = client.post("/v1/predict", json={"texts": REVIEWS[:2]}).json()["predictions"]
    assert outputs["probabilities"]["shape"] == [2, 2] and outputs["probabilities"]["datatype"] == "FP32"
    assert outputs["probabilities"]["data"] == [v1[0]["probabilities"]["negative"], v1[0]["probabilities"]["positive"],
                                                v1[1]["probabilities"]["negative"], v1[1]["probabilities"]["positive"]]
    assert outputs["label"]["data"] == [p["label"] for p in v1] and outputs["tokens"]["datatype"] == "INT64"
    only = {**request, "outputs": [{"name": "label"}]}
    assert [o["name"] for o in client.post("/v2/models/lstm/versions/1/infer", json=only).json()["outputs"]] == ["label"]


def test_page_and_docs_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace('href="/docs"', "").split("<footer>")[0]  # nothing fetched from elsewhere
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_explain_endpoint(client):
    body = client.post("/v1/explain", json={"text": "A superb film.", "method": "occlusion"}).json()
    assert body["method"] == "occlusion" and [w["text"] for w in body["words"]] == ["A", "superb", "film"]
    assert body["prediction"]["label"] == body["target"]


BAD = [
    ({"json": {"texts": []}}, 422, "send at least one text"),
    ({"json": {"texts": ["a"] * 257}}, 422, "more than the 256 allowed"),
    ({"json": {"texts": "just one"}}, 422, "texts"),
    ({"json": {"texts": ["fine", 3]}}, 422, "texts.1"),
    ({"json": {"text": ["fine"]}}, 422, "texts: this field is required"),
    ({"json": {"texts": ["fine"], "model": "bert"}}, 404, "served models: lstm, other"),
    ({"content": b'{"texts": ["\xff\xfe"]}', "headers": {"content-type": "application/json"}}, 400, "not UTF-8"),
    ({"content": b'{"texts": [', "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ({"content": b'{"texts": ["a"]}', "headers": {"content-type": "text/plain"}}, 415, "Content-Type: application/json"),
    ({"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, 422, "body"),
]


@pytest.mark.parametrize("request_args,status,message", BAD)
def test_bad_requests_get_a_4xx_with_a_message(client, request_args, status, message):
    response = client.post("/v1/predict", **request_args)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("request_body,status,message", [
    ({"inputs": []}, 400, "exactly one input"),
    ({"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, 400, "BYTES"),
    ({"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a"]}]}, 400, "shape [3] but 1"),
    ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [7]}]}, 422, "not a string"),
    ({"inputs": [{"name": "text", "shape": [300], "datatype": "BYTES", "data": ["a"] * 300}]}, 422, "256"),
    ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}], "outputs": [{"name": "x"}]},
     400, "unknown output"),
])
def test_bad_infer_requests(client, request_body, status, message):
    response = client.post("/v2/models/lstm/infer", json=request_body)
    assert response.status_code == status and message in response.json()["error"]
    assert client.post("/v2/models/nope/infer", json=request_body).status_code == 404


def test_bodies_over_1_mib_get_413_declared_or_streamed(client, live_server):
    big = json.dumps({"texts": ["word " * 1000] * 220}).encode()  # about 1.1 MB
    assert len(big) > 1024 * 1024
    response = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["error"]
    # Over a real socket without Content-Length (chunked): refused once the limit is passed.
    connection = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=30)
    connection.request("POST", "/v1/predict", body=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                       headers={"Content-Type": "application/json"}, encode_chunked=True)
    assert connection.getresponse().status == 413
    connection.close()
    just_under = json.dumps({"texts": ["word " * 900] * 200}).encode()
    assert len(just_under) < 1024 * 1024
    assert client.post("/v1/predict", content=just_under, headers={"content-type": "application/json"}).status_code == 200


def test_concurrent_requests_are_batched_and_each_gets_its_own_answers(served_runs):
    predictors = load_predictors([str(served_runs[0])])
    app = create_app(predictors, ServeConfig(batch_window_ms=50, max_batch_size=64))
    texts = [f"review number {i}: {'great' if i % 2 else 'awful'} film" for i in range(24)]
    expected = [p.to_dict() for p in predictors["lstm"].predict(texts)]

    async def scenario():
        import httpx

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http_client:
                responses = await asyncio.gather(*[http_client.post("/v1/predict", json={"texts": [t]}) for t in texts])
        return [r.json()["predictions"][0] for r in responses]

    answers = asyncio.run(scenario())
    assert answers == expected
    batcher = app.state.models["lstm"].batcher
    assert batcher.texts == 24 and batcher.batches < 6  # merged, not one model call per request
