"""ONNX export: dynamic batch and length, parity with PyTorch, the predictor's ONNX backend."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from seqlab.errors import ConfigError, RunError
from seqlab.explain import explain
from seqlab.export import ONNX_FILE, export_onnx
from seqlab.predict import load

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(synthetic_run, tmp_path_factory):
    directory = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(synthetic_run, directory)
    result = export_onnx(directory)
    return directory, result


def test_export_writes_model_onnx_next_to_the_encoder(exported):
    directory, result = exported
    assert result.path == directory / ONNX_FILE and (directory / "encoder.json").is_file()
    assert result.max_difference < 1e-4
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_graph_has_dynamic_batch_and_length(exported):
    import onnx

    graph = onnx.load(str(exported[0] / ONNX_FILE)).graph
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert all(isinstance(size, str) for size in shapes["ids"]) and len(shapes["ids"]) == 2
    assert isinstance(shapes["lengths"][0], str)


@pytest.mark.parametrize("batch", [1, 64])
def test_onnx_predictions_match_pytorch(exported, synthetic_corpus, batch):
    directory, _ = exported
    texts = list(synthetic_corpus.test.texts[:batch])
    texts[0] = texts[0] + " and" * 300  # one review over maxlen, cut the same way in both
    torch_p = load(directory).predict_proba(texts)
    onnx_predictor = load(directory, backend="onnx")
    assert onnx_predictor.backend.name == "onnxruntime"
    onnx_p = onnx_predictor.predict_proba(texts)
    assert onnx_p.shape == (batch, 2)
    assert np.abs(torch_p - onnx_p).max() < 1e-4
    assert (torch_p.argmax(1) == onnx_p.argmax(1)).all()


def test_onnx_backend_explains_with_occlusion(exported):
    directory, _ = exported
    torch_e = explain(load(directory), "A dull film with a brilliant ending")
    onnx_e = explain(load(directory, backend="onnx"), "A dull film with a brilliant ending")
    assert onnx_e.method == "occlusion"
    assert [w.score for w in onnx_e.words] == pytest.approx([w.score for w in torch_e.words], abs=1e-4)
    with pytest.raises(ConfigError, match="PyTorch backend"):
        explain(load(directory, backend="onnx"), "fine", method="integrated_gradients")


def test_missing_or_stale_onnx_is_refused_clearly(synthetic_run, exported, tmp_path):
    with pytest.raises(RunError, match="seqlab export"):
        load(synthetic_run, backend="onnx") if not (synthetic_run / ONNX_FILE).exists() else None
    stale = tmp_path / "run"
    shutil.copytree(exported[0], stale)
    weights = stale / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # different weights than the ones exported, recorded as the run's own (as a retrain would)
    weights.write_bytes(bytes(data))
    config = json.loads((stale / "config.json").read_text())
    config["checksums"]["model.safetensors"] = hashlib.sha256(bytes(data)).hexdigest()
    (stale / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="exported from other weights"):
        load(stale, backend="onnx")
    with pytest.raises(ConfigError, match="unknown export format"):
        export_onnx(exported[0], format="tflite")
    with pytest.raises(ConfigError, match="unknown backend"):
        load(exported[0], backend="tensorrt")


@pytest.mark.parametrize("name", ["cnn", "bigru-attention", "fasttext"])
def test_models_with_dropout_export_and_match(name, synthetic, tmp_path):
    """Dropout must be off both in the exported graph and in the PyTorch side of the check."""
    import seqlab

    seqlab.train_model(name, synthetic, seqlab.TrainConfig(epochs=1, batch_size=64, validation_split=0.0),
                       out=tmp_path / name, embedding_dim=16, hidden_size=None if name == "fasttext" else 8,
                       embedding_dropout=0.3, output_dropout=0.5)
    result = export_onnx(tmp_path / name)
    assert result.max_difference < 1e-4
    texts = ["A wonderful, moving film.", "Dull. " * 40, "ok"]
    assert np.abs(load(tmp_path / name).predict_proba(texts)
                  - load(tmp_path / name, backend="onnx").predict_proba(texts)).max() < 1e-4


def test_binary_fasttext_exports_and_matches(synthetic, tmp_path):
    """Counting each distinct word and pair once (unique rows per text) survives the export."""
    import seqlab

    config = seqlab.TrainConfig(epochs=1, batch_size=16, learning_rate=5.0, optimizer="sgd", validation_split=0.0)
    seqlab.train_model("fasttext", synthetic, config, out=tmp_path / "bag", embedding_dim=16, buckets=4096,
                       sparse_gradients=True, binary=True)
    result = export_onnx(tmp_path / "bag")
    assert result.max_difference < 1e-4
    texts = ["good good good film", "Dull. " * 40, "ok", "a film, a film and a film"]
    assert np.abs(load(tmp_path / "bag").predict_proba(texts)
                  - load(tmp_path / "bag", backend="onnx").predict_proba(texts)).max() < 1e-4
