"""Optional features without their extra: one line naming the extra to install (seqlab/extras.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.cli.exit_codes import ExitCode, exit_code
from seqlab.extras import EXTRAS, MissingExtra, require

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_every_extra_of_pyproject_is_known_and_no_other():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) == set(declared) - {"test", "bench"}  # bench: the benchmarks' other side, no seqlab feature


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_a_missing_module_names_its_extra(extra, monkeypatch):
    module = EXTRAS[extra][1][-1]
    require(extra)  # the test extra installs every one
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra) as raised:
        require(extra)
    assert f"needs the {extra} extra: pip install 'seqlab[{extra}]' ({module} is not installed)" in str(raised.value)
    assert exit_code(raised.value) == ExitCode.USAGE


def test_an_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown extra 'serving'"):
        require("serving")


@pytest.fixture
def run_with_onnx_file(synthetic_run, tmp_path) -> Path:
    run = shutil.copytree(synthetic_run, tmp_path / "run")
    (run / "model.onnx").write_bytes(b"")  # never read: ONNX Runtime is missing
    return run


@pytest.mark.parametrize("args,module,message", [
    (["serve", "RUN"], "fastapi", "seqlab serve needs the serve extra: pip install 'seqlab[serve]'"),
    (["serve", "RUN", "--grpc-port", "8001"], "grpc", "seqlab serve --grpc-port needs the grpc extra: pip install 'seqlab[grpc]'"),
    (["serve", "RUN", "--onnx"], "onnxruntime", "seqlab serve --onnx needs the export extra: pip install 'seqlab[export]'"),
    (["export", "RUN"], "onnx", "seqlab export needs the export extra: pip install 'seqlab[export]'"),
    (["predict", "RUN", "--onnx", "Fine."], "onnxruntime", "predicting with ONNX Runtime (--onnx) needs the export extra"),
    (["explain", "RUN", "--onnx", "Fine."], "onnxruntime", "predicting with ONNX Runtime (--onnx) needs the export extra"),
])
def test_each_command_names_the_extra_it_lacks(args, module, message, run_with_onnx_file, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    result = runner.invoke(app, [str(run_with_onnx_file) if arg == "RUN" else arg for arg in args])
    assert isinstance(result.exception, MissingExtra), result.output
    assert str(result.exception).startswith(message)
    assert f"({module} is not installed)" in str(result.exception)


@pytest.mark.slow  # a process that imports seqlab's CLI and PyTorch
def test_seqlab_serve_without_fastapi_prints_one_line_and_exits_2(tmp_path):
    program = "import sys; sys.modules['fastapi'] = None; sys.argv = ['seqlab', 'serve', sys.argv[1]]; " \
              "from seqlab.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", program, str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"}, timeout=300)
    assert result.returncode == ExitCode.USAGE == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: seqlab serve needs the serve extra: pip install 'seqlab[serve]' (fastapi is not installed)"]
