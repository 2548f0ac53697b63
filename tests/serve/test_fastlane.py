"""The fast lane answers exactly as FastAPI's routes do (its oracle), and requests that would wait too long
for an overloaded model are refused with 503 and Retry-After at once, in the app and before the app."""

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from seqlab.serve.app import create_app, load_predictors
from seqlab.serve.config import ServeConfig

pytestmark = pytest.mark.usefixtures("one_thread")
JSON = {"content-type": "application/json"}
INFER = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["A superb film.", "Dreadful."]}]}
REQUESTS = [
    ("POST", "/v1/predict", {"json": {"texts": ["A wonderful, moving film.", "Dull.", ""]}}),
    ("POST", "/v1/predict", {"json": {"texts": ["fine"], "model": "other"}}),
    ("POST", "/v1/predict", {"json": {"texts": ["fine"], "model": "bert"}}),
    ("POST", "/v1/predict", {"json": {"texts": []}}),
    ("POST", "/v1/predict", {"json": {"texts": ["a"] * 257}}),
    ("POST", "/v1/predict", {"json": {"texts": ["fine", 3], "extra": 1}}),
    ("POST", "/v1/predict", {"content": b'{"texts": [', "headers": JSON}),
    ("POST", "/v1/predict", {"content": b'{"texts": ["bad \\ud800 text"]}', "headers": JSON}),
    ("POST", "/v1/predict", {"content": b'\xef\xbb\xbf{"texts": ["fine"]}', "headers": JSON}),
    ("POST", "/v1/predict", {"content": b'{"texts": ["fine"]}', "headers": {"content-type": "application/json; charset=utf-8"}}),
    ("POST", "/v1/predict", {"content": b'{"texts": ["fine"]}', "headers": {"content-type": "text/plain"}}),
    ("POST", "/v1/predict", {"content": b'{"texts": ["fine"]}'}),
    ("POST", "/v2/models/lstm/infer", {"json": {**INFER, "id": "r1", "outputs": [{"name": "label"}]}}),
    ("POST", "/v2/models/lstm/versions/1/infer", {"json": INFER}),
    ("POST", "/v2/models/lstm/versions/2/infer", {"json": INFER}),
    ("POST", "/v2/models/nope/infer", {"json": INFER}),
    ("POST", "/v2/models/lstm/infer", {"json": {"inputs": [{**INFER["inputs"][0], "shape": [3]}]}}),
    ("POST", "/v2/models/lstm/infer", {"json": {**INFER, "parameters": {"binary_data_output": True}}}),
    ("POST", "/v2/models/lstm/infer", {"content": b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", '
                                                  b'"data": ["fine"]}]}'}),
    ("GET", "/v2/health/live", {}),
    ("GET", "/v2/health/ready", {}),
    ("GET", "/v1/predict", {}),
]


def test_the_fast_lane_answers_as_the_routes_do(served_runs):
    predictors = load_predictors([str(path) for path in served_runs])
    with TestClient(create_app(predictors)) as fast, TestClient(create_app(predictors, fast_lane=False)) as routes:
        for method, path, arguments in REQUESTS:
            answers = [client.request(method, path, **arguments) for client in (fast, routes)]
            assert answers[0].status_code == answers[1].status_code, (path, arguments, answers[0].text)
            assert answers[0].content == answers[1].content, (path, arguments)
            for header in ("content-type", "content-length", "retry-after", "allow", HEADER):
                assert answers[0].headers.get(header) == answers[1].headers.get(header), (path, header)
        counted = [line for line in fast.get("/metrics").text.splitlines() if line.startswith("seqlab_requests_total")]
        assert any('endpoint="/v1/predict"' in line and 'code="200"' in line for line in counted)
        assert any('endpoint="/v2/models/{name}/versions/{version}/infer"' in line for line in counted)


HEADER = "inference-header-content-length"


def slow_model(served_runs, seconds: float):
    """The synthetic run's predictors, the first taking at least `seconds` per model call."""
    predictors = load_predictors([str(served_runs[0])])
    predict = predictors["lstm"].predict

    def slowly(texts, *arguments, **options):
        time.sleep(seconds)
        return predict(texts, *arguments, **options)

    predictors["lstm"].predict = slowly  # type: ignore[method-assign]
    return predictors


def answers(app, requests: int) -> list:
    """`requests` predictions arriving 2 ms apart, after one answered alone: the server knows its drain rate before
    the burst, so what is refused does not hang on how fast this machine runs the event loop."""
    async def scenario():
        import httpx

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                async def one(i: int):
                    await asyncio.sleep(0.002 * i)  # arriving one after another, as clients do
                    return await client.post("/v1/predict", json={"texts": [f"review {i}: a fine film"]})

                assert (await one(0)).status_code == 200
                return await asyncio.gather(*[one(i) for i in range(requests)])

    return asyncio.run(scenario())


def test_requests_that_would_wait_too_long_get_503_with_retry_after(served_runs):
    config = ServeConfig(max_batch_size=4, batch_window_ms=0, max_queue_wait_s=0.5)
    app = create_app(slow_model(served_runs, 0.05), config)
    responses = answers(app, 120)  # at most 80 texts/s: a queue of 1.5 s if all were taken, over 10 texts refused
    shed = [r for r in responses if r.status_code == 503]
    assert shed and all(r.headers["retry-after"] == "1" and "over the server's limit of 0.5 s" in r.json()["error"]
                        for r in shed)
    assert {r.status_code for r in responses} == {200, 503} and app.state.models["lstm"].queued_texts == 0
    # fewer concurrent requests than that limit allows (at most 3 ahead, about 0.15 s): none refused
    assert {r.status_code for r in answers(create_app(slow_model(served_runs, 0.05), config), 4)} == {200}


def test_an_overloaded_model_is_refused_before_its_request_is_read(served_runs):
    app = create_app(load_predictors([str(served_runs[0])]), ServeConfig(max_queue_wait_s=0.5))
    batcher = app.state.models["lstm"].batcher
    assert app.state.shed("/v1/predict") is None  # nothing measured yet: nothing refused
    batcher.rate, batcher.waiting = 100.0, 80  # 80 texts waiting at 100 texts/s: 0.8 s
    assert app.state.shed("/v2/health/live") is None and app.state.shed("/v2/models/other/infer") is None
    refusal = app.state.shed("/v2/models/lstm/infer")
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(refusal({"type": "http", "method": "POST", "path": "/v2/models/lstm/infer", "headers": []}, receive, send))
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]
    assert b"would start on a request in about 0.80 s" in sent[1]["body"]
    batcher.waiting = 10
    assert app.state.shed("/v1/predict") is None
    batcher.rate, batcher.waiting = 1.0, 0  # however slow it was measured, a request with none ahead is taken
    assert app.state.shed("/v1/predict") is None
