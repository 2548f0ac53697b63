"""The HTTP API: /v1, the Open Inference Protocol (/v2), several models, limits that give 4xx, never 500."""

import asyncio
import http.client
import json

import pytest
from fastapi.testclient import TestClient

from seqlab.explain import explain
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
    ({"json": {"texts": ["fine"], "model": ""}}, 404, "unknown model ''"),
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


def strict_json(response) -> object:
    """The body parsed as standard JSON: NaN and Infinity (which Python's json would accept) are refused."""
    def refuse(constant):
        raise AssertionError(f"the response holds {constant}, which is not JSON: {response.text[:200]}")

    return json.loads(response.content, parse_constant=refuse)


def test_lone_surrogates_become_replacement_characters(client):
    raw = {"content-type": "application/json"}
    explained = client.post("/v1/explain", content=b'{"text": "bad \\ud800 text", "method": "occlusion"}', headers=raw)
    assert explained.status_code == 200, explained.text
    assert [w["text"] for w in strict_json(explained)["words"]] == ["bad", "text"]
    predicted = client.post("/v1/predict", content=b'{"texts": ["bad \\udfff text"]}', headers=raw)
    assert predicted.json() == client.post("/v1/predict", json={"texts": ["bad \ufffd text"]}).json()
    infer = (b'{"id": "\\ud800", "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", '
             b'"data": ["fine \\udc00"]}]}')
    answered = client.post("/v2/models/lstm/infer", content=infer, headers=raw)
    assert answered.status_code == 200 and answered.json()["id"] == "\ufffd"
    paired = client.post("/v1/predict", content=b'{"texts": ["\\ud83d\\ude00 great"]}', headers=raw)
    assert paired.status_code == 200  # a surrogate pair is one character, kept


def test_405_names_the_allowed_methods(client):
    response = client.get("/v1/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST" and "error" in response.json()
    assert "GET" in client.delete("/v2/health/live").headers["allow"]


def test_the_schema_states_the_limits(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    texts = components["PredictRequest"]["properties"]["texts"]
    assert texts["minItems"] == 1 and texts["maxItems"] == 256
    explain = components["ExplainRequest"]["properties"]
    assert {"type": "string", "enum": ["negative", "positive"]} in explain["target"]["anyOf"]
    assert explain["method"]["enum"] == ["auto", "occlusion", "integrated_gradients"]
    assert {"type": "string", "enum": ["lstm", "other"]} in explain["model"]["anyOf"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "post":
                assert {"415", "413", "422", "503"} <= set(operation["responses"]), path
    assert "503" in schema["paths"]["/v2/health/ready"]["get"]["responses"]


def test_explanations_of_long_texts_are_bounded_and_exact(client, served_runs):
    review = "Dull and predictable. " * 3000 + "But the ending was wonderful and moving."
    body = strict_json(client.post("/v1/explain", json={"text": review, "method": "occlusion"}))
    expected = explain(load(served_runs[0]), review, method="occlusion")
    assert body["prediction"] == expected.prediction.to_dict() and body["words_cut"] == expected.words_cut
    read = [w for w in body["words"] if w["read"]]
    assert read == [w.to_dict() for w in expected.words if w.read]  # same scores, offsets into the whole review
    assert len(body["words"]) == 400 and body["words"][0]["start"] > 0
    assert all(review[w["start"]:w["end"]] == w["text"] for w in body["words"])


@pytest.fixture
def broken_runs(served_runs):
    """The two served models, the first with NaN weights (as a diverged training leaves them)."""
    import torch

    predictors = load_predictors([str(p) for p in served_runs])
    with torch.no_grad():
        next(predictors["lstm"].model.parameters()).fill_(float("nan"))
    return predictors


def test_a_model_with_non_finite_weights_is_not_ready_and_never_answers_nan(broken_runs):
    with TestClient(create_app(broken_runs)) as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503 and strict_json(ready)["ready"] is False
        assert "not finite" in ready.json()["error"] and "retrain" in ready.json()["error"]
        assert client.get("/v2/models/lstm/ready").status_code == 503
        assert client.get("/v2/models/other/ready").json() == {"name": "other", "ready": True}
        for path, body in (("/v1/predict", {"texts": ["fine"]}), ("/v1/explain", {"text": "fine"})):
            response = client.post(path, json=body)
            assert response.status_code == 503 and "cannot answer" in strict_json(response)["error"]
        assert client.post("/v1/predict", json={"texts": ["fine"], "model": "other"}).status_code == 200
        assert len(strict_json(client.get("/v1/models"))) == 2


def test_a_model_whose_outputs_turn_non_finite_stops_answering(served_runs):
    import torch

    predictors = load_predictors([str(served_runs[0])])
    with TestClient(create_app(predictors, ServeConfig(batching=False))) as client:
        assert client.post("/v1/predict", json={"texts": ["fine"]}).status_code == 200
        with torch.no_grad():
            for parameter in predictors["lstm"].model.parameters():
                parameter.fill_(float("inf"))
        response = client.post("/v1/predict", json={"texts": ["fine"]})
        assert response.status_code == 503 and "non-finite" in strict_json(response)["error"]
        assert client.get("/v2/health/ready").status_code == 503


def test_requests_over_the_queue_limit_get_503_with_retry_after(served_runs):
    app = create_app(load_predictors([str(served_runs[0])]), ServeConfig(max_queued_texts=256, batch_window_ms=20))
    texts = ["A long review of a film that was good in parts. " * 20] * 256

    async def scenario():
        import httpx

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http_client:
                return await asyncio.gather(*[http_client.post("/v1/predict", json={"texts": texts}) for _ in range(4)])

    responses = asyncio.run(scenario())
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[-1] == 503
    shed = next(r for r in responses if r.status_code == 503)
    assert shed.headers["retry-after"] == "1" and "limit of 256" in shed.json()["error"]
    assert app.state.models["lstm"].queued_texts == 0


def test_an_api_key_guards_everything_but_health_page_and_docs(served_runs, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLAB_API_KEY", "s3cret")
    with TestClient(create_app(load_predictors([str(served_runs[0])]))) as client:
        refused = client.post("/v1/predict", json={"texts": ["fine"]})
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert refused.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/predict", json={"texts": ["fine"]}, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/v1/predict", json={"texts": ["fine"]}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/v2/models/lstm").status_code == 401
        for public in ("/v2/health/live", "/v2/health/ready", "/", "/docs", "/openapi.json"):
            assert client.get(public).status_code == 200, public
        assert "securitySchemes" in client.get("/openapi.json").json()["components"]
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    assert ServeConfig(api_key_file=str(key_file)).api_key() == "from-a-file"


def test_binding_beyond_loopback_without_a_key_warns(monkeypatch, tmp_path):
    from seqlab.errors import ConfigError

    monkeypatch.delenv("SEQLAB_API_KEY", raising=False)
    assert "without an API key" in ServeConfig(host="0.0.0.0").exposure_warning()
    assert ServeConfig(host="127.0.0.1").exposure_warning() is None
    assert ServeConfig(host="::1").exposure_warning() is None
    monkeypatch.setenv("SEQLAB_API_KEY", "k")
    assert ServeConfig(host="0.0.0.0").exposure_warning() is None
    with pytest.raises(ConfigError, match="cannot read the API key file"):
        ServeConfig(api_key_file=str(tmp_path / "missing")).api_key()
    with pytest.raises(ConfigError, match="max_queued_texts must be at least 256"):
        ServeConfig(max_queued_texts=10)
