"""`python -m seqlab` for prepared corpora and several processes: clear messages, never a traceback."""

import os
import subprocess
import sys

import pytest

from seqlab.cli.exit_codes import ExitCode
from seqlab.launch import torchrun_command, without_option


def seqlab(*args):
    return subprocess.run([sys.executable, "-m", "seqlab", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"})


def test_launcher_passes_the_command_on_without_nproc():
    command = torchrun_command(4, ["train", "lstm", "--nproc", "4", "--epochs=2", "--nproc=4", "--out", "r"])
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert command[5:] == ["-m", "seqlab", "train", "lstm", "--epochs=2", "--out", "r"]
    assert without_option(["--nprocs", "2"], "--nproc") == ["--nprocs", "2"]


def test_missing_prepared_corpus_and_archive_are_clear_errors(tmp_path, seqlab_here):
    done = seqlab_here("train", "lstm", "--prepared", str(tmp_path / "nowhere"))
    stderr = done.stderr.decode()
    assert done.returncode == ExitCode.DATA and "no prepared corpus at" in stderr and "seqlab data prepare" in stderr
    assert "Traceback" not in stderr
    done = seqlab_here("data", "prepare", str(tmp_path / "missing.tar.gz"), "--out", str(tmp_path / "p"))
    stderr = done.stderr.decode()
    assert done.returncode == ExitCode.DATA and "aclImdb_v1.tar.gz" in stderr and "Traceback" not in stderr


@pytest.mark.slow  # torchrun and its two processes
def test_a_failing_process_fails_a_multi_process_run_with_a_clear_message(tmp_path):
    done = seqlab("train", "lstm", "--nproc", "2", "--prepared", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"))
    assert done.returncode == ExitCode.FAILED
    assert "distributed training failed" in done.stderr and "no prepared corpus at" in done.stderr
    assert not (tmp_path / "r").exists()


def test_options_a_prepared_corpus_cannot_honour_are_refused_by_name(tmp_path):
    """(--train-size is honoured: a prepared corpus's subset is a selection of its positions.)"""
    import numpy as np
    from typer.testing import CliRunner

    from seqlab.cli import app
    from seqlab.text.prepared import InMemorySource, prepare

    texts = ["a good film", "a bad film", "good acting, good story", "bad acting and a bad story"]
    folder = prepare({"train": InMemorySource(texts, np.array([1, 0, 1, 0]))}, tmp_path / "prepared", workers=1)
    runner = CliRunner()
    refused = runner.invoke(app, ["train", "lstm", "--prepared", str(folder), "--maxlen", "50", "--train-size", "2",
                                  "--text-column", "review", "--out", str(tmp_path / "r")])
    message = str(refused.exception)
    assert "prepared corpus" in message and all(name in message for name in ("--maxlen", "--text-column"))
    both = runner.invoke(app, ["train", "lstm", "--prepared", str(folder), "--data", str(tmp_path / "x.csv")])
    assert "--prepared and --data" in str(both.exception)
    assert not (tmp_path / "r").exists()
