"""`--data` through the command line: bad input gets one clear line and leaves nothing behind."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.cli.exit_codes import ExitCode
from seqlab.errors import SeqlabError


def seqlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "seqlab", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


@pytest.mark.parametrize("content,message", [
    (b"text,label\ngood film,pos\n,neg\n", "bad.csv, line 3: the text in column 'text' is empty"),
    (b"body,label\ngood film,pos\n", "no column 'text'"),
    (b"text,label\ngood film,pos\nfine film,pos\n", "single class"),
    (b"text,label\ngood film,pos\nbad \xff film,neg\n", "bad.csv, line 3: bytes that are not UTF-8"),
    (b"", "bad.csv is empty"),
])
def test_bad_data_gets_a_message_and_no_run_directory(tmp_path, content, message):
    (tmp_path / "bad.csv").write_bytes(content)
    result = CliRunner().invoke(app, ["train", "lstm", "--data", str(tmp_path / "bad.csv"),
                                      "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, SeqlabError) and message in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


@pytest.mark.slow  # the installed entry point in a subprocess: what a user sees
def test_the_command_prints_the_message_without_a_traceback(tmp_path):
    (tmp_path / "bad.csv").write_bytes(b"text,label\ngood film,1\nbad film,neg\n")
    result = seqlab("train", "lstm", "--data", "bad.csv", "--out", "run", cwd=tmp_path)
    assert result.returncode == ExitCode.DATA and "Traceback" not in result.stderr
    assert "line 3: the label column 'label' mixes whole numbers" in " ".join(result.stderr.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


@pytest.mark.parametrize("args,message", [
    (["train", "--resume", "nowhere"], "no checkpoint to resume"),
    (["train"], "name a model to train"),
])
def test_resume_without_a_checkpoint_and_train_without_a_model_are_explained(args, message):
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, SeqlabError) and message in str(result.exception)
