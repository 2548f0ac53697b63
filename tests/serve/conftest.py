"""Server fixtures: the synthetic run served by the app, in-process (TestClient) or by real uvicorn on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

from seqlab.export import export_onnx


@pytest.fixture(scope="package")
def served_runs(synthetic_run, tmp_path_factory):
    """Two run directories: the synthetic run with model.onnx exported, and a copy under another name."""
    root = tmp_path_factory.mktemp("served")
    first, second = root / "lstm", root / "other"
    shutil.copytree(synthetic_run, first)
    export_onnx(first)
    shutil.copytree(first, second)
    return first, second


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1 in a background thread, until stop()."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="package")
def live_server(served_runs):
    from seqlab.serve.app import create_app, load_predictors

    server = LiveServer(create_app(load_predictors([str(path) for path in served_runs]))).start()
    yield server
    server.stop()


@pytest.fixture
def unused_port() -> int:
    return free_port()


SERVE = ("import json, sys\n"
         "from seqlab.serve.app import load_predictors, run_server\n"
         "from seqlab.serve.config import ServeConfig\n"
         "run_server(load_predictors(sys.argv[2:]), ServeConfig(**json.loads(sys.argv[1])))\n")


class ServerProcess:
    """`run_server` (what `seqlab serve` runs) in its own process on 127.0.0.1, with `options` as ServeConfig fields."""

    def __init__(self, runs, env: dict | None = None, **options):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
        self.process = subprocess.Popen([sys.executable, "-c", SERVE, json.dumps({"port": self.port, **options}),
                                         *map(str, runs)], stdout=self.output, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})

    def printed(self) -> str:
        self.output.seek(0)
        return self.output.read().decode(errors="replace")

    def start(self, timeout: float = 90) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/live", timeout=5):
                    return self
            except (OSError, urllib.error.HTTPError):
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.printed()[-3000:]}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the server did not answer within {timeout} s")
                time.sleep(0.2)

    def stop(self) -> str:
        """Stop the server; what it printed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.printed()


@pytest.fixture(scope="package")
def limited_server(served_runs):
    """A server process with short timeouts and small caps, so tests reach every limit quickly."""
    server = ServerProcess(served_runs, max_connections=40, keep_alive_timeout_s=1.0, header_timeout_s=1.0,
                           body_timeout_s=1.5, max_header_bytes=8192, max_queued_texts=256).start()
    yield server
    server.stop()
