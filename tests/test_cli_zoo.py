"""The commands and options added for the model zoo, run as a user runs them."""

import json

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.cli.exit_codes import ExitCode
from test_cli import seqlab

runner = CliRunner()


@pytest.mark.slow
def test_compare_with_new_models_options_and_report(archive, tmp_path):
    result = runner.invoke(app, [
        "compare", "gru-attention", "transformer", "--archive", str(archive), "--train-size", "600", "--test-size",
        "200", "--epochs", "2", "--embedding-dim", "16", "--hidden-size", "16", "--layers", "1",
        "--embedding-dropout", "0.1", "--output-dropout", "0.2", "--schedule", "cosine", "--clip-norm", "1",
        "--weight-decay", "0.01", "--patience", "1", "--restore-best", "--gradient-steps", "30", "--out", str(tmp_path),
    ])
    assert result.exit_code == 0, result.output
    for text in ('Model: "gru-attention"', "AdditiveAttention", "TransformerEncoder", "report.html"):
        assert text in result.output, text
    table = (tmp_path / "results.md").read_text()  # the terminal table wraps long names at 80 columns
    assert "tfidf-logreg (baseline)" in table and "ROC-AUC" in table
    config = json.loads((tmp_path / "gru-attention" / "config.json").read_text())
    assert config["model"]["config"]["pooling"] == "attention" and config["model"]["config"]["output_dropout"] == 0.2
    assert config["training"]["schedule"] == "cosine" and config["training"]["clip_norm"] == 1.0
    assert (tmp_path / "transformer" / "best.safetensors").is_file() and (tmp_path / "report.html").is_file()
    prediction = seqlab("predict", str(tmp_path / "gru-attention"), "A superb film.", "--json")
    assert prediction.returncode == 0, prediction.stderr


@pytest.mark.slow
def test_word2vec_command_then_training_with_its_vectors(archive, tmp_path):
    vectors = tmp_path / "w2v.bin"
    made = runner.invoke(app, ["embeddings", "word2vec", "--archive", str(archive), "--train-size", "500",
                               "--unlabelled-size", "500", "--dimension", "16", "--epochs", "1", "--out", str(vectors)])
    assert made.exit_code == 0, made.output
    assert "500 training + 500 unlabelled reviews" in made.output and vectors.is_file()
    trained = runner.invoke(app, ["train", "gru", "--archive", str(archive), "--train-size", "400", "--test-size", "100",
                                  "--epochs", "1", "--embeddings", str(vectors), "--freeze-embeddings",
                                  "--out", str(tmp_path / "run")])
    assert trained.exit_code == 0, trained.output
    assert "vocabulary words found" in trained.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["config"]["embedding_dim"] == 16 and config["model"]["config"]["freeze_embeddings"]
    mismatch = seqlab("train", "gru", "--archive", str(archive), "--train-size", "400", "--test-size", "100",
                      "--embeddings", str(vectors), "--embedding-dim", "32", "--out", str(tmp_path / "never"))
    assert mismatch.returncode == ExitCode.USAGE and b"pass --embedding-dim 16" in mismatch.stderr
    assert b"Traceback" not in mismatch.stderr and not (tmp_path / "never").exists()


@pytest.mark.slow
def test_gradients_command(archive, tmp_path):
    result = runner.invoke(app, ["gradients", "rnn", "lstm", "--archive", str(archive), "--train-size", "400",
                                 "--epochs", "1", "--steps", "50", "--reviews", "8", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    profiles = json.loads((tmp_path / "gradients.json").read_text())
    assert set(profiles) == {"rnn (trained)", "rnn (fresh)", "lstm (trained)", "lstm (fresh)"}
    assert all(len(p["norms"]) == 50 for p in profiles.values())
    assert (tmp_path / "gradients.png").stat().st_size > 10_000


@pytest.mark.slow
def test_gradients_of_a_trained_run_use_its_own_vocabulary(archive, trained_run, tmp_path):
    from seqlab.evaluation.gradients import encode_test_reviews
    from seqlab.predict import load

    encoder = load(trained_run).run.encoder
    test = encode_test_reviews(archive, encoder, steps=300)
    assert len(test) == 25_000 and test.lengths.max() == 300 > encoder.config.maxlen
    assert test.encoded.ids.max() < encoder.vocab_size
    result = runner.invoke(app, ["gradients", str(trained_run), "--archive", str(archive), "--steps", "60",
                                 "--reviews", "8", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    profiles = json.loads((tmp_path / "gradients.json").read_text())
    assert set(profiles) == {"small-lstm (trained)", "small-lstm (fresh)"}
    assert profiles["small-lstm (trained)"]["norms"] != profiles["small-lstm (fresh)"]["norms"]


@pytest.mark.parametrize("args,message,code", [
    (["summary", "lstm", "--pooling", "median"], b"unknown pooling 'median'; choose one of last, mean, max, attention",
     ExitCode.USAGE),
    (["summary", "transformer", "--embedding-dim", "30", "--heads", "4"], b"must be a multiple of heads", ExitCode.USAGE),
    (["summary", "lstm", "--heads", "4"], b"model 'lstm' has no option heads", ExitCode.USAGE),
    (["gradients", "bilstm"], b"gradients supports one-directional recurrent models (rnn, lstm, gru", ExitCode.USAGE),
    (["train", "lstm", "--schedule", "step", "--archive", "missing.tar.gz"], b"unknown schedule 'step'", ExitCode.USAGE),
    (["train", "lstm", "--embeddings", "no/such/file.txt", "--train-size", "10"], b"no word-vector file at no/such/file.txt",
     ExitCode.DATA),
])
def test_bad_zoo_input_gets_a_message_not_a_traceback(args, message, code, synthetic_csv, seqlab_here):
    if "--embeddings" in args:
        args = [*args, "--data", str(synthetic_csv / "train.csv")]
    result = seqlab_here(*args)
    assert result.returncode == code, result.stdout
    assert message in result.stderr and b"Traceback" not in result.stderr


def test_summary_of_the_transformer_and_attention_models():
    result = runner.invoke(app, ["summary", "transformer", "--layers", "3"])
    assert result.exit_code == 0 and "TransformerEncoder x3 (4 heads)" in result.output
    result = runner.invoke(app, ["summary", "bigru-attention"])
    assert result.exit_code == 0 and "GRU (bidirectional)" in result.output and "AdditiveAttention" in result.output
