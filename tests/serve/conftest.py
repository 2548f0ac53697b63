"""Server fixtures: the synthetic run served by the app, in-process (TestClient) or by real uvicorn on loopback."""

from __future__ import annotations

import shutil
import socket
import threading
import time

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
