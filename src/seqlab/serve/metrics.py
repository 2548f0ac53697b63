"""Prometheus metrics at GET /metrics, one registry per app (so several apps in a process stay apart).

    seqlab_requests_total{protocol,endpoint,code}          requests answered (HTTP status or gRPC code)
    seqlab_request_errors_total{protocol,endpoint,code}    those answered with an error
    seqlab_request_duration_seconds{protocol,endpoint}     time from a request's arrival to its answer
    seqlab_batch_size_texts{model}                         texts per model call: micro-batches merge requests
    seqlab_model_call_duration_seconds{model}              time of each model call
    seqlab_queue_depth_requests{model}                     prediction requests waiting for or in a model call

`endpoint` is the route's path template (/v2/models/{name}/infer) or the gRPC method name, so
the number of series does not grow with the paths clients make up.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        where = ["protocol", "endpoint"]
        self.requests = Counter("seqlab_requests", "Requests answered, by protocol, endpoint and status code",
                                [*where, "code"], registry=self.registry)
        self.errors = Counter("seqlab_request_errors", "Requests answered with an error (HTTP 4xx/5xx, gRPC not OK)",
                              [*where, "code"], registry=self.registry)
        self.latency = Histogram("seqlab_request_duration_seconds", "Time from a request's arrival to its answer",
                                 where, buckets=SECONDS, registry=self.registry)
        self.batch_size = Histogram("seqlab_batch_size_texts", "Texts per model call", ["model"],
                                    buckets=BATCH_SIZES, registry=self.registry)
        self.model_seconds = Histogram("seqlab_model_call_duration_seconds", "Time of each model call", ["model"],
                                       buckets=SECONDS, registry=self.registry)
        self._children: dict[tuple[str, str, str, bool], tuple] = {}  # answered()'s series, looked up once each
        self.queue_depth = Gauge("seqlab_queue_depth_requests", "Prediction requests waiting for or in a model call",
                                 ["model"], registry=self.registry)

    def answered(self, protocol: str, endpoint: str, code: str, error: bool, seconds: float) -> None:
        key = (protocol, endpoint, code, error)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(protocol, endpoint, code),
                                              self.errors.labels(protocol, endpoint, code) if error else None,
                                              self.latency.labels(protocol, endpoint))
        requests, errors, latency = children
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def model_call(self, model: str, function, texts: list[str]):
        """`function(texts)`, one model call, counted and timed."""
        start = time.perf_counter()
        try:
            return function(texts)
        finally:
            self.model_seconds.labels(model).observe(time.perf_counter() - start)
            self.batch_size.labels(model).observe(len(texts))

    def install(self, app: FastAPI) -> None:
        """Count the app's HTTP requests (add after the other middleware, so refusals count too) and serve /metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        app.add_middleware(HttpMetrics, metrics=self)

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class HttpMetrics:
    """ASGI middleware: each HTTP request's route, status code and time into `metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            route = getattr(scope.get("route"), "path", None)  # set by the router on the shared scope
            self.metrics.answered("http", route or "other", str(status), status >= 400, time.perf_counter() - start)
