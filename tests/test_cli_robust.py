"""What the command answers to awkward input and events: bytes that are not UTF-8 in argv, non-finite
numbers in --json output, Ctrl-C, a full disk while saving, an interrupted comparison."""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import redirect_stdout

import pytest

from seqlab.cli.exit_codes import ExitCode
from seqlab.cli.output import print_json


def _strict(line: str):
    return json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


def test_print_json_never_writes_nan_or_infinity():
    captured = io.StringIO()
    with redirect_stdout(captured):
        print_json({"accuracy": float("nan"), "loss": float("inf"), "recall": {"a": 0.5}})
    assert _strict(captured.getvalue()) == {"accuracy": None, "loss": None, "recall": {"a": 0.5}}


@pytest.mark.parametrize("command", [["predict", "--json"], ["predict"], ["explain", "--json"], ["explain"]])
def test_argv_bytes_that_are_not_utf8_become_replacement_characters(synthetic_run, seqlab_here, command):
    bad = b"bad \xff\xfe text".decode("utf-8", "surrogateescape")  # as Python hands such argv to seqlab
    result = seqlab_here(command[0], str(synthetic_run), bad, *command[1:])
    assert result.returncode == 0, result.stderr
    output = result.stdout.decode("utf-8")  # strict: raises on invalid bytes
    if "--json" not in command:
        assert "bad \ufffd\ufffd text" in output  # the review as shown in the table or coloured
    elif command[0] == "predict":
        assert _strict(output)["text"] == "bad \ufffd\ufffd text"
    else:
        assert [word["text"] for word in _strict(output)["words"]] == ["bad", "text"]


@pytest.mark.slow  # starts an interpreter that imports torch
def test_argv_bytes_in_a_real_process_give_valid_utf8(synthetic_run):
    result = subprocess.run([sys.executable, "-m", "seqlab", "predict", str(synthetic_run), b"\xff", "--json"],
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert _strict(result.stdout.decode("utf-8"))["text"] == "\ufffd"


@pytest.mark.slow  # trains in a child process, interrupted
def test_ctrl_c_prints_one_line_and_exits_130(synthetic_csv, tmp_path):
    out = tmp_path / "lstm"
    child = subprocess.Popen(
        [sys.executable, "-m", "seqlab", "train", "lstm", "--epochs", "50", "--embedding-dim", "8", "--hidden-size",
         "4", "--data", str(synthetic_csv / "train.csv"), "--test-data", str(synthetic_csv / "test.csv"),
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 240
    while not (out.with_name("lstm.checkpoint") / "latest.json").exists():  # training is under way
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == ExitCode.INTERRUPTED, stderr
    assert stderr.decode().strip().splitlines() == [
        "interrupted; runs already saved are complete, the one in progress was not written"]
    assert not out.exists()


FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    import torch
    from seqlab import runs
    from seqlab.cli.output import errors
    from seqlab.errors import SeqlabError
    from seqlab.models import build_model
    from seqlab.text.encoder import EncoderConfig, TextEncoder

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as ENOSPC would
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    encoder = TextEncoder.fit(["a fine film", "a dull film"], EncoderConfig(max_features=50))
    model = build_model("lstm", vocab_size=encoder.vocab_size, embedding_dim=64, hidden_size=64)  # > 20 kB of weights
    try:
        runs.save_run(sys.argv[1], model, encoder, ("negative", "positive"), {}, {}, {})
    except SeqlabError as error:
        print(error)
""")


@pytest.mark.slow  # starts an interpreter that imports torch
def test_a_full_disk_while_saving_is_one_line_and_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "runs" / "lstm"
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(out)], capture_output=True, timeout=300, text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith(f"cannot write {out}: File too large (no room left"), result.stdout
    assert list((tmp_path / "runs").iterdir()) == []  # no run, no staging folder, no temporary


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.mark.slow  # trains three small models
def test_compare_resume_keeps_finished_models_and_continues_the_interrupted_one(synthetic, tmp_path, one_thread):
    from seqlab.pipeline import compare
    from seqlab.training.fit import Silent, TrainConfig

    class StopAt(Silent):
        """Ctrl-C during the second model, after a few checkpointed batches."""

        def __init__(self, name):
            self.name, self.batches = name, 0

        def advance(self, loss, accuracy):
            self.batches += 1
            if self.name == "lstm" and self.batches == 12:
                raise KeyboardInterrupt

    training = TrainConfig(epochs=2, batch_size=64, validation_split=0.0)
    options = {"embedding_dim": 8, "hidden_size": 4}
    run = lambda out, **more: compare(["rnn", "lstm"], synthetic, training, out, gradient_steps=None,  # noqa: E731
                                      checkpoint_every=2, **options, **more)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", reporter_for=StopAt)
    first = _digest(tmp_path / "cut" / "rnn" / "model.safetensors")
    assert (tmp_path / "cut" / "lstm.checkpoint" / "latest.json").is_file() and not (tmp_path / "cut" / "lstm").exists()
    with pytest.raises(Exception, match="--resume"):
        run(tmp_path / "cut")  # never overwrites an interrupted comparison unasked
    counted: dict[str, StopAt] = {}
    resumed = run(tmp_path / "cut", resume=True, reporter_for=lambda name: counted.setdefault(name, StopAt("none")))
    assert "rnn" not in counted and 0 < counted["lstm"].batches < 20  # 20 batches in all: it went on from a checkpoint
    whole = run(tmp_path / "whole")
    assert _digest(tmp_path / "cut" / "rnn" / "model.safetensors") == first  # kept, not retrained
    assert [r.name for r in resumed.results] == ["rnn", "lstm"] and not any(r.error for r in resumed.results)
    for kept, fresh in zip(resumed.results, whole.results):  # the same figures as a comparison never interrupted
        assert kept.test == fresh.test and kept.history["loss"] == fresh.history["loss"]
    saved = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert [m["name"] for m in saved["models"]] == ["rnn", "lstm"]
    assert not (tmp_path / "cut" / "lstm.checkpoint").exists()


@pytest.mark.slow  # trains in a child process, killed, then resumed
def test_compare_killed_during_the_second_model_resumes_from_the_command_line(synthetic_csv, tmp_path, seqlab_here):
    out = tmp_path / "cmp"
    args = ["compare", "rnn", "lstm", "--data", str(synthetic_csv / "train.csv"), "--test-data",
            str(synthetic_csv / "test.csv"), "--epochs", "3", "--batch-size", "16", "--embedding-dim", "8",
            "--hidden-size", "4", "--checkpoint-every", "3", "--no-baseline", "--gradient-steps", "0", "--out", str(out)]
    child = subprocess.Popen([sys.executable, "-m", "seqlab", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (out / "lstm.checkpoint" / "latest.json").exists():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.kill()
    child.wait(timeout=60)
    first = _digest(out / "rnn" / "model.safetensors")
    result = seqlab_here(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert _digest(out / "rnn" / "model.safetensors") == first
    saved = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in saved["models"]] == ["rnn", "lstm"] and not any(m["error"] for m in saved["models"])
    assert len(saved["models"][1]["history"]["loss"]) == 3 and not (out / "lstm.checkpoint").exists()
