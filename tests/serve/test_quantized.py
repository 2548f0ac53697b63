"""An int8 run (`seqlab export RUN --quantize`) served over HTTP answers as the float run does, within int8's error."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors import safe_open

import seqlab
from seqlab.models.quantize import INT8
from seqlab.runs import quantize_run
from seqlab.serve.app import create_app

pytestmark = pytest.mark.usefixtures("one_thread")
TOLERANCE = 0.02  # int8 tables with one scale per row move a probability by well under this
REVIEWS = ["A wonderful, moving film with a superb cast.", "Dull, predictable and far too long.", "", "fine"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic, one_thread):
    """A sparse-SGD fasttext run on the synthetic corpus (binary bags, as the fast recipe) and its int8 copy."""
    out = tmp_path_factory.mktemp("served-int8") / "bag"
    config = seqlab.TrainConfig(epochs=5, batch_size=16, learning_rate=10.0, optimizer="sgd", schedule="linear",
                                validation_split=0.0)
    seqlab.train_model("fasttext", synthetic, config, out=out, embedding_dim=16, buckets=4096, sparse_gradients=True,
                       binary=True)
    return out, quantize_run(out)


@pytest.fixture(scope="module")
def clients(runs):
    with TestClient(create_app({"bag": seqlab.load(runs[0])})) as full, \
            TestClient(create_app({"bag": seqlab.load(runs[1])})) as small:
        yield full, small


def _v1_probabilities(client, texts: list[str]) -> np.ndarray:
    response = client.post("/v1/predict", json={"texts": texts})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    return np.array([[p["probabilities"]["negative"], p["probabilities"]["positive"]] for p in predictions])


def _v2_probabilities(client, texts: list[str]) -> np.ndarray:
    request = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    response = client.post("/v2/models/bag/infer", json=request)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["probabilities"]["shape"] == [len(texts), 2]
    return np.array(outputs["probabilities"]["data"]).reshape(len(texts), 2)


def test_int8_run_answers_v1_and_v2_as_the_float_run(runs, clients, synthetic):
    with safe_open(str(runs[1] / "model.safetensors"), framework="pt") as handle:
        assert any(name.endswith(INT8) for name in handle.keys())  # the served copy is the int8 one
    encoder = seqlab.load(runs[0]).encoder
    texts = REVIEWS + [encoder.decode(synthetic.test.encoded.sequence(row)) for row in range(40)]
    full, small = clients
    expected = _v1_probabilities(full, texts)  # (texts, classes)
    served = _v1_probabilities(small, texts)  # (texts, classes)
    assert (expected.argmax(1)[len(REVIEWS):] == synthetic.test.labels[:40]).mean() > 0.75  # a model that learned
    assert np.abs(served - expected).max() < TOLERANCE
    assert np.abs(served - expected).max() > 0  # int8 weights, not the float ones, answered
    assert (served.argmax(1) == expected.argmax(1)).mean() >= 0.95
    np.testing.assert_allclose(_v2_probabilities(small, texts), served, atol=1e-6)
    np.testing.assert_allclose(_v2_probabilities(full, texts), expected, atol=1e-6)


def test_int8_run_describes_itself_as_the_float_run_does(clients):
    full, small = clients
    assert small.get("/v1/models").json()[0]["labels"] == full.get("/v1/models").json()[0]["labels"]
    assert small.get("/v2/models/bag/ready").json()["ready"] is True
