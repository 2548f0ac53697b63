"""int8 runs (models/quantize.py): written by quantize_run, read by the ordinary load path."""

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import RunError
from seqlab.models.quantize import INT8, SCALE, dequantize_state, quantize_state


@pytest.fixture(scope="module")
def fasttext_run(tmp_path_factory, synthetic, one_thread):
    out = tmp_path_factory.mktemp("quantize") / "fasttext"
    config = seqlab.TrainConfig(epochs=3, batch_size=32, learning_rate=0.01, validation_split=0.0)
    seqlab.train_model("fasttext", synthetic, config, out=out, embedding_dim=16, buckets=4096)
    return out


def test_quantized_state_round_trips_within_half_a_step():
    table = torch.randn(50, 100)  # (rows, columns)
    state = {"table": table, "bias": torch.randn(3)}
    quantized = quantize_state(state)
    assert quantized["table" + INT8].dtype == torch.int8 and quantized["table" + SCALE].shape == (50,)
    assert torch.equal(quantized["bias"], state["bias"])  # small tensors stay float
    restored = dequantize_state(quantized)
    step = table.abs().amax(dim=1, keepdim=True) / 127  # (rows, 1)
    assert ((restored["table"] - table).abs() <= step * 0.51).all()
    assert dequantize_state(state) == state


def test_quantized_run_is_smaller_loads_and_predicts_as_the_float_run(fasttext_run, synthetic):
    from seqlab.runs import quantize_run

    written = quantize_run(fasttext_run)
    assert written == fasttext_run.with_name("fasttext-int8")
    float_bytes = (fasttext_run / "model.safetensors").stat().st_size
    assert (written / "model.safetensors").stat().st_size < 0.3 * float_bytes
    original, quantized = seqlab.load(fasttext_run), seqlab.load(written)
    sample = [original.encoder.decode(synthetic.test.encoded.sequence(row)) for row in range(len(synthetic.test))]
    p, q = original.predict_proba(sample), quantized.predict_proba(sample)  # (texts, classes)
    assert np.abs(p - q).max() < 0.02
    assert abs((p.argmax(1) == synthetic.test.labels).mean() - (q.argmax(1) == synthetic.test.labels).mean()) <= 0.005
    with pytest.raises(RunError, match="quantized already"):
        quantize_run(written, written.with_name("again"))
    with pytest.raises(RunError, match="is the run itself"):
        quantize_run(fasttext_run, fasttext_run)


def test_export_quantize_on_the_command_line(fasttext_run, tmp_path):
    from typer.testing import CliRunner

    from seqlab.cli import app

    out = tmp_path / "small"
    result = CliRunner().invoke(app, ["export", str(fasttext_run), "--quantize", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "int8" in result.output and (out / "model.safetensors").is_file()
    assert seqlab.load(out).predict("good")[0].label in ("negative", "positive")


def test_export_out_without_quantize_is_refused(fasttext_run, tmp_path):
    from typer.testing import CliRunner

    from seqlab.cli import app

    result = CliRunner().invoke(app, ["export", str(fasttext_run), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "--out names the quantized run" in str(result.exception or result.output)
