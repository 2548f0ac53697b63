"""The OpenAPI schema tells the truth: schemathesis, with all its checks and all its phases (stateful included),
finds no failure against a real server process, bounded in examples and time."""

import subprocess
import sys
from pathlib import Path

# What JSON Schema cannot say: a v2 tensor's shape must match its data, so a request the schema allows
# can get 400 from infer. That is the one answer allowed beyond the schema's own (docs/serving.md).
CONFIG = """\
[[operations]]
include-path-regex = "/infer$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"""


def test_schemathesis_with_every_check_finds_no_failure(limited_server, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
               f"{limited_server.url}/openapi.json", "--checks", "all", "--max-examples", "20", "--seed", "18",
               "--request-timeout", "30", "--no-color"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=420, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
    assert "Stateful" in completed.stdout or "stateful" in completed.stdout
