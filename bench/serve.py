"""The HTTP service under load, on loopback: throughput, latency and errors; batching on/off; PyTorch vs ONNX Runtime.

    python bench/serve.py --run runs/lstm            # the lecture's LSTM (train it with `seqlab train lstm`)
    python bench/serve.py --run RUN --quick          # a few hundred requests, to check the script runs

For each backend (PyTorch, ONNX Runtime) and batching setting, it starts `seqlab serve` in its own
process on 127.0.0.1, then sends real IMDb test reviews, one per request (POST /v1/predict):
- "1 client": one request at a time: the batch-1 latency;
- "N clients": N concurrent keep-alive connections: the throughput.
Requests are bounded in number; the client is a minimal asyncio HTTP/1.1 client in this process, so
on a 2-core machine client and server share the cores. Prints a Markdown table and writes
bench/results/serve.json (or --results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, archive_path, machine, markdown_table  # noqa: E402

from seqlab.files import write_json  # noqa: E402

TARGETS = {"reviews_per_second": 1000, "batch1_p50_ms": 10}  # issue #5, lecture LSTM on the 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`seqlab serve RUN` in a child process on a free loopback port."""

    def __init__(self, run: Path, onnx: bool, batching: bool):
        self.port = free_port()
        command = [sys.executable, "-m", "seqlab.cli", "serve", str(run), "--port", str(self.port),
                   "--batching" if batching else "--no-batching"] + (["--onnx"] if onnx else [])
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"seqlab serve exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/health/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"seqlab serve did not answer within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _client(port: int, bodies: list[bytes], next_index, latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (index := next_index()) is not None:
            body = bodies[index % len(bodies)]
            started = time.perf_counter()
            writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{status}: {payload[:200].decode(errors='replace')}")
    except (OSError, asyncio.IncompleteReadError, ValueError) as problem:
        errors.append(f"connection: {problem!r}")
    finally:
        writer.close()


def load(port: int, bodies: list[bytes], clients: int, requests: int) -> dict:
    """Send `requests` requests over `clients` connections; latency percentiles and throughput."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))

    def next_index():
        return next(counter, None)

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*[_client(port, bodies, next_index, latencies, errors) for _ in range(clients)])
        return time.perf_counter() - started

    seconds = asyncio.run(main())
    ordered = sorted(latencies) or [float("nan")]
    percentile = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"clients": clients, "requests": requests, "completed": len(latencies), "errors": len(errors),
            "error_samples": errors[:3], "seconds": seconds, "reviews_per_second": len(latencies) / seconds,
            "p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "mean_ms": statistics.fmean(ordered) * 1000}


def prepared_run(run: Path, scratch: Path) -> Path:
    """A copy of `run` with model.onnx (exported here if the run has none), so the run itself is untouched."""
    from seqlab.export import ONNX_FILE, export_onnx

    copy = scratch / run.name
    shutil.copytree(run, copy)
    if not (copy / ONNX_FILE).exists():
        export_onnx(copy)
    return copy


def reviews(count: int) -> list[bytes]:
    from seqlab.data import load_imdb

    texts = load_imdb(archive_path()).test.texts
    step = max(1, len(texts) // count)
    return [json.dumps({"texts": [texts[i]]}).encode() for i in range(0, step * count, step)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/lstm"), help="run directory to serve")
    parser.add_argument("--quick", action="store_true", help="few requests, to check the script runs")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections for the throughput runs")
    parser.add_argument("--results", type=Path, default=RESULTS / "serve.json")
    args = parser.parse_args()
    if not (args.run / "config.json").is_file():
        sys.exit(f"no run directory at {args.run}; train one with `seqlab train lstm --out {args.run}`")
    single, concurrent = (30, 300) if args.quick else (300, 3000)
    clients = min(args.clients, 8) if args.quick else args.clients
    bodies = reviews(200 if args.quick else 1000)

    rows, results = [], []
    with tempfile.TemporaryDirectory() as scratch:
        run = prepared_run(args.run, Path(scratch))
        for backend in ("pytorch", "onnx"):
            for batching in (True, False):
                server = Server(run, onnx=backend == "onnx", batching=batching)
                try:
                    server.wait_ready()
                    load(server.port, bodies, 4, 40)  # warm-up
                    for count, total in ((1, single), (clients, concurrent)):
                        result = {"backend": backend, "batching": batching, **load(server.port, bodies, count, total)}
                        results.append(result)
                        rows.append([backend, "on" if batching else "off", count, result["completed"], result["errors"],
                                     f"{result['reviews_per_second']:.0f}", f"{result['p50_ms']:.1f}",
                                     f"{result['p99_ms']:.1f}"])
                finally:
                    server.stop()
    print(markdown_table(["backend", "batching", "clients", "requests", "errors", "reviews/s", "p50 ms", "p99 ms"], rows))
    best = max(r["reviews_per_second"] for r in results if r["errors"] == 0) if results else 0
    batch1 = min(r["p50_ms"] for r in results if r["clients"] == 1)
    print(f"\nbest throughput {best:.0f} reviews/s (target {TARGETS['reviews_per_second']}), "
          f"best batch-1 p50 {batch1:.1f} ms (target {TARGETS['batch1_p50_ms']} ms); "
          f"one review per request, mean {statistics.fmean(len(b) for b in bodies):.0f} bytes")
    write_json(args.results, {"machine": machine(), "quick": args.quick, "run": str(args.run), "targets": TARGETS,
                              "reviews_per_request": 1, "load_average": os.getloadavg(), "results": results})
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
