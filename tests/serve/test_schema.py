"""The OpenAPI schema tells the truth: schemathesis, with all its checks and all its phases (stateful included),
finds no failure against a real server process, bounded in examples and time."""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a real server process and schemathesis

# What JSON Schema cannot say: a v2 tensor's shape must match its data, so a request the schema allows
# can get 400 from infer. That is the one answer allowed beyond the schema's own (docs/serving.md).
CONFIG = """\
[[operations]]
include-path-regex = "/infer$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"""


def test_schemathesis_with_every_check_finds_no_failure(limited_server, tmp_path):
    # The first gradient explanation loads the compiled backward loops, which can take long on a busy machine.
    warm_up = urllib.request.Request(f"{limited_server.url}/v1/explain", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"text": "fine", "method": "integrated_gradients"}).encode())
    urllib.request.urlopen(warm_up, timeout=300).read()
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [str(Path(sys.executable).with_name("st")), "--no-color", "--config-file", str(config), "run",
               f"{limited_server.url}/openapi.json", "--checks", "all", "--max-examples", "20", "--seed", "18",
               "--request-timeout", "120", "--max-response-time", "100", "--max-time", "180"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=420, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
    assert "Stateful" in completed.stdout or "stateful" in completed.stdout
