"""What `pip install seqlab` gets: one version, the license, type information and the package data."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import seqlab
from seqlab.cli import app

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once_and_printed():
    assert "version" in PYPROJECT["project"]["dynamic"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "seqlab.__version__"}
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"seqlab {seqlab.__version__}"


def test_license_and_type_information_are_declared():
    assert PYPROJECT["project"]["license"] == "MIT" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text() and "seqlab authors" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "src" / "seqlab" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["seqlab"]


@pytest.mark.slow  # builds the wheel (tens of seconds)
def test_the_wheel_holds_the_package_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("seqlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("seqlab/py.typed", "seqlab/models/csrc/cells.cpp", "seqlab/serve/static/index.html",
                     "seqlab/serve/static/app.js", "seqlab/serve/proto/open_inference_grpc.binpb",
                     f"seqlab-{seqlab.__version__}.dist-info/licenses/LICENSE"):
        assert expected in names, expected
