"""The HTTP service under load, on loopback: throughput, latency, errors and load shedding.

    python bench/serve.py --run runs/lstm            # the lecture's LSTM (train it with `seqlab train lstm`)
    python bench/serve.py --run RUN --quick          # a few hundred requests, to check the script runs

Two parts, each server `seqlab serve` in its own process on 127.0.0.1 with its default limits:
- "matrix": for each backend (PyTorch, ONNX Runtime) and batching setting, real IMDb test reviews
  one per request (POST /v1/predict) from 1 client (batch-1 latency) and from 32 keep-alive clients;
- "load": PyTorch with batching, from 8, 32, 128 and 1,000 concurrent clients, one review per request
  and then 32 reviews per request. Each reports requests and reviews per second, p50/p99 latency
  of the answered requests, errors, the share of requests shed with 503 (over the server's queue or
  connection limit) and how fast those came, and the p99 of a health probe (GET /v2/health/ready,
  its own connection, from a process of its own so that it does not wait on the clients' event
  loop) sent every 20 ms during the load.
Requests are bounded in number; the client is a minimal asyncio HTTP/1.1 client in this process, so
on a 2-core machine client and server share the cores. Prints Markdown tables and writes
bench/results/serve.json (or --results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shlex
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

# issue #5, then issue 18, lecture LSTM on the 2-core machine
TARGETS = {"reviews_per_second": 1000, "batch1_p50_ms": 10, "requests_per_second_32_clients": 3000,
           "p99_ms_32_clients": 50, "health_p99_ms_128_clients": 50}
LOAD_CLIENTS = (8, 32, 128, 1000)
HEALTH = b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`seqlab serve RUN` in a child process on a free loopback port."""

    def __init__(self, run: Path, onnx: bool, batching: bool, options: tuple[str, ...] = ()):
        self.port = free_port()
        command = [sys.executable, "-m", "seqlab.cli", "serve", str(run), "--port", str(self.port),
                   "--batching" if batching else "--no-batching", *(["--onnx"] if onnx else []), *options]
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


async def _exchange(reader, writer, request: bytes) -> tuple[int, bytes, bool]:
    """Send one request, read its response: status, body, and whether the server closes the connection."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
               for line in head.split(b"\r\n")[1:] if b":" in line}
    payload = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status, payload, headers.get(b"connection", b"").lower() == b"close"


async def _send(connection, port: int, request: bytes):
    """`request` over `connection` (opened to `port` when None): the connection to reuse (None once
    the server closes it or it fails), and (status, body), or the problem that stopped it."""
    try:
        if connection is None:
            connection = await asyncio.open_connection("127.0.0.1", port)
        status, payload, closing = await _exchange(*connection, request)
    except (OSError, asyncio.IncompleteReadError, ValueError) as problem:
        if connection is not None:
            connection[1].close()
        return None, problem
    if closing:
        connection[1].close()
        connection = None
    return connection, (status, payload)


class Tally:
    def __init__(self):
        self.latencies: list[float] = []  # answered (200) requests
        self.shed: list[float] = []  # 503s
        self.errors: list[str] = []


async def _client(port: int, bodies: list[bytes], next_index, tally: Tally) -> None:
    connection = None
    while (index := next_index()) is not None:
        body = bodies[index % len(bodies)]
        request = (b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        started = time.perf_counter()
        connection, answer = await _send(connection, port, request)
        if isinstance(answer, Exception):
            tally.errors.append(f"connection: {answer!r}")
            continue
        status, payload = answer
        if status == 200:
            tally.latencies.append(time.perf_counter() - started)
        elif status == 503:
            tally.shed.append(time.perf_counter() - started)
        else:
            tally.errors.append(f"{status}: {payload[:200].decode(errors='replace')}")
    if connection is not None:
        connection[1].close()


async def _probe_health(port: int, stopped, latencies: list[float], errors: list[str]) -> None:
    """GET /v2/health/ready every 20 ms on its own connection until `stopped()`."""
    connection = None
    while not stopped():
        started = time.perf_counter()
        connection, answer = await _send(connection, port, HEALTH)
        if isinstance(answer, Exception):
            errors.append(f"health: {answer!r}")
        else:
            latencies.append(time.perf_counter() - started)
            if answer[0] != 200:
                errors.append(f"health: {answer[0]}")
        await asyncio.sleep(0.02)
    if connection is not None:
        connection[1].close()


def _health_prober(port: int, stop, answers) -> None:
    """The health probe in a process of its own: its latencies are the server's, not the wait for a turn of
    the clients' busy event loop. Sends (latencies, errors) back through `answers` once `stop` is set."""
    latencies: list[float] = []
    errors: list[str] = []
    asyncio.run(_probe_health(port, stop.is_set, latencies, errors))
    answers.send((latencies, errors))


def _percentile(values: list[float], q: float) -> float | None:
    """The q-quantile of `values` in milliseconds; None when there are none (NaN is not JSON)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def load(port: int, bodies: list[bytes], clients: int, requests: int, texts_per_request: int = 1,
         probe: bool = False) -> dict:
    """Send `requests` requests over `clients` connections: throughput, latency, errors, shedding, health."""
    tally = Tally()
    counter = iter(range(requests))
    health: list[float] = []
    health_errors: list[str] = []

    def next_index():
        return next(counter, None)

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*[_client(port, bodies, next_index, tally) for _ in range(clients)])
        return time.perf_counter() - started

    if probe:
        context = multiprocessing.get_context("fork")
        stop = context.Event()
        answers, sender = context.Pipe(duplex=False)
        prober = context.Process(target=_health_prober, args=(port, stop, sender), daemon=True)
        prober.start()
    seconds = asyncio.run(main())
    if probe:
        stop.set()
        health, health_errors = answers.recv()
        prober.join()
    answered = len(tally.latencies)
    result = {"clients": clients, "texts_per_request": texts_per_request, "requests": requests,
              "completed": answered, "errors": len(tally.errors), "error_samples": tally.errors[:3],
              "shed": len(tally.shed), "shed_rate": len(tally.shed) / requests, "seconds": seconds,
              "requests_per_second": answered / seconds, "reviews_per_second": answered * texts_per_request / seconds,
              "p50_ms": _percentile(tally.latencies, 0.50), "p99_ms": _percentile(tally.latencies, 0.99),
              "mean_ms": statistics.fmean(tally.latencies) * 1000 if tally.latencies else None,
              "shed_p99_ms": _percentile(tally.shed, 0.99)}
    if probe:
        result.update(health_probes=len(health), health_p99_ms=_percentile(health, 0.99),
                      health_errors=len(health_errors))
    return result


def prepared_run(run: Path, scratch: Path) -> Path:
    """A copy of `run` with model.onnx (exported here if the run has none), so the run itself is untouched."""
    from seqlab.export import ONNX_FILE, export_onnx

    copy = scratch / run.name
    shutil.copytree(run, copy)
    if not (copy / ONNX_FILE).exists():
        export_onnx(copy)
    return copy


def reviews(count: int, per_request: int = 1) -> list[bytes]:
    from seqlab.data import load_imdb

    texts = load_imdb(archive_path()).test.texts
    step = max(1, len(texts) // (count * per_request))
    chosen = [texts[i] for i in range(0, step * count * per_request, step)]
    return [json.dumps({"texts": chosen[i : i + per_request]}).encode() for i in range(0, len(chosen), per_request)]


def _raise_file_limit(wanted: int) -> None:
    """This process holds one socket per client: raise its open-file limit toward the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def matrix(run: Path, bodies: list[bytes], single: int, concurrent: int, clients: int,
           options: tuple[str, ...]) -> tuple[list, list]:
    rows, results = [], []
    for backend in ("pytorch", "onnx"):
        for batching in (True, False):
            server = Server(run, onnx=backend == "onnx", batching=batching, options=options)
            try:
                server.wait_ready()
                load(server.port, bodies, 4, 40)  # warm-up
                for count, total in ((1, single), (clients, concurrent)):
                    result = {"backend": backend, "batching": batching, **load(server.port, bodies, count, total)}
                    results.append(result)
                    rows.append([backend, "on" if batching else "off", count, result["completed"], result["errors"],
                                 f"{result['reviews_per_second']:.0f}", _ms(result["p50_ms"]), _ms(result["p99_ms"])])
            finally:
                server.stop()
    return rows, results


def load_levels(run: Path, bodies: dict[int, list[bytes]], clients: tuple[int, ...], requests: int,
                options: tuple[str, ...]) -> tuple[list, list]:
    """PyTorch with batching and the server's limits, at each client count and texts per request."""
    rows, results = [], []
    server = Server(run, onnx=False, batching=True, options=options)
    try:
        server.wait_ready()
        load(server.port, bodies[1], 4, 40)  # warm-up
        for per_request, requests_bodies in bodies.items():
            for count in clients:
                result = load(server.port, requests_bodies, count, max(requests, 2 * count), per_request, probe=True)
                results.append(result)
                rows.append([count, per_request, result["requests"], result["completed"], result["errors"],
                             f"{result['shed_rate']:.1%}", f"{result['requests_per_second']:.0f}",
                             f"{result['reviews_per_second']:.0f}", _ms(result["p50_ms"]), _ms(result["p99_ms"]),
                             _ms(result["shed_p99_ms"]), _ms(result["health_p99_ms"])])
                time.sleep(1)  # let the queue drain and shed connections close before the next level
    finally:
        server.stop()
    return rows, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/lstm"), help="run directory to serve")
    parser.add_argument("--quick", action="store_true", help="few requests, to check the script runs")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections for the matrix's throughput runs")
    parser.add_argument("--results", type=Path, default=RESULTS / "serve.json")
    parser.add_argument("--serve-options", default="", metavar="OPTIONS",
                        help="more `seqlab serve` options for every server, e.g. \"--max-queued-texts 4096\"")
    parser.add_argument("--no-matrix", action="store_true", help="only the load levels (PyTorch with batching)")
    args = parser.parse_args()
    options = tuple(shlex.split(args.serve_options))
    if not (args.run / "config.json").is_file():
        sys.exit(f"no run directory at {args.run}; train one with `seqlab train lstm --out {args.run}`")
    single, concurrent = (30, 300) if args.quick else (300, 3000)
    clients = min(args.clients, 8) if args.quick else args.clients
    levels, level_requests = ((8, 64), 200) if args.quick else (LOAD_CLIENTS, 5000)
    _raise_file_limit(max(levels) + 256)
    bodies = reviews(200 if args.quick else 1000)
    bodies_by_size = {1: bodies, 32: reviews(20 if args.quick else 100, 32)}

    with tempfile.TemporaryDirectory() as scratch:
        run = prepared_run(args.run, Path(scratch))
        rows, results = ([], []) if args.no_matrix else matrix(run, bodies, single, concurrent, clients, options)
        load_rows, load_results = load_levels(run, bodies_by_size, levels, level_requests, options)
    if rows:
        print(markdown_table(["backend", "batching", "clients", "requests", "errors", "reviews/s", "p50 ms", "p99 ms"], rows))
        print()
    print(markdown_table(["clients", "texts/request", "requests", "answered", "errors", "503", "requests/s", "reviews/s",
                          "p50 ms", "p99 ms", "503 p99 ms", "health p99 ms"], load_rows))
    if results:
        best = max(r["reviews_per_second"] for r in results if r["errors"] == 0)
        batch1 = min(r["p50_ms"] for r in results if r["clients"] == 1 and r["p50_ms"] is not None)
        print(f"\nbest throughput {best:.0f} reviews/s (target {TARGETS['reviews_per_second']}), "
              f"best batch-1 p50 {batch1:.1f} ms (target {TARGETS['batch1_p50_ms']} ms); "
              f"one review per request, mean {statistics.fmean(len(b) for b in bodies):.0f} bytes")
    for level in load_results:
        if level["texts_per_request"] == 1 and level["clients"] in (32, 128, 1000):
            print(f"{level['clients']} clients, one review per request: {level['requests_per_second']:.0f} requests/s "
                  f"(target {TARGETS['requests_per_second_32_clients']} at 32), p99 {_ms(level['p99_ms'])} ms "
                  f"(target {TARGETS['p99_ms_32_clients']} at 32), {level['errors']} errors, "
                  f"{level['shed_rate']:.1%} shed with 503 (p99 {_ms(level['shed_p99_ms'])} ms), health p99 "
                  f"{_ms(level['health_p99_ms'])} ms (target {TARGETS['health_p99_ms_128_clients']} at 128)")
    write_json(args.results, {"machine": machine(), "quick": args.quick, "run": str(args.run),
                              "serve_options": list(options), "targets": TARGETS, "reviews_per_request": 1,
                              "load_average": os.getloadavg(), "results": results, "load": load_results})
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
