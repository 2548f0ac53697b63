"""Request limits and error responses: every bad request gets a 4xx with a message, never a 500.

- bodies over the limit are refused with 413 before they are read in full, bodies that take longer
  than the body timeout with 408;
- request bodies must be UTF-8 (400 naming the first bad byte);
- JSON that is not JSON is a 400, JSON of the wrong shape a 422, each naming the field and the fix;
- a model that cannot take more work now gives 503 with Retry-After (see `Unavailable`);
- with an API key, requests without it get 401 (`ApiKey`);
- connections are capped and their request heads timed (`connection_protocol`);
- errors are JSON objects {"error": "..."}, the Open Inference Protocol's error format.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seqlab.errors import ConfigError, SeqlabError
from seqlab.serve.config import MAX_BODY_BYTES, ServeConfig

log = logging.getLogger("seqlab.serve")
PUBLIC = ("/v2/health/", "/static/", "/docs", "/docs-assets/")  # open without the API key: no model behind them
PUBLIC_EXACT = ("/", "/openapi.json")


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Unavailable(Exception):
    """A model cannot answer now: 503 with this message; `retry_after` seconds when waiting helps (overload)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BodyLimit:
    """ASGI middleware: reads each request body (up to `max_bytes`, within `timeout` seconds), checks it is
    UTF-8, then replays it."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, timeout: float = 30.0):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error(400, "the Content-Length header is not a number")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.timeout):  # one timer for the whole body
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        break
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await error(408, f"the request body did not arrive within {self.timeout:g} s; send it at once",
                        {"Connection": "close"})(scope, receive, send)
            return
        if size > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = b"".join(chunks)
        json_length = headers.get(b"inference-header-content-length", b"")  # binary tensors follow
        try:
            body[:int(json_length) if json_length.isdigit() else len(body)].decode("utf-8")
        except UnicodeDecodeError as problem:
            await error(400, f"the request body is not UTF-8: byte 0x{body[problem.start]:02x} at offset "
                             f"{problem.start} ({problem.reason}); encode the JSON as UTF-8")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error(413, f"the request body is over the {self.max_bytes:,}-byte limit ({self.max_bytes // 1024} KiB); "
                         "send fewer or shorter texts per request")(scope, receive, send)


def _location(parts) -> str:
    names = [str(part) for part in parts if part != "body"]
    return ".".join(names) if names else "body"


def _validation_message(problems, content_type: str) -> tuple[int, str]:
    first = problems[0]
    if first.get("loc") == ("body",) and "json" not in content_type:
        return 415, (f"the request body must be JSON sent with Content-Type: application/json "
                     f"(got {content_type or 'no Content-Type'})")
    if first.get("type") == "json_invalid":
        context = first.get("ctx", {}).get("error", "")
        return 400, f"the request body is not valid JSON ({context}); send a JSON object"
    lines = []
    for problem in problems[:5]:
        message = problem.get("msg", "invalid").removeprefix("Value error, ")
        where = _location(problem.get("loc", ()))
        if problem.get("type") == "missing":
            message = "this field is required"
        elif problem.get("type") == "extra_forbidden":
            message = "unknown field; see /docs for the request format"
        lines.append(f"{where}: {message}")
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return 422, "; ".join(lines) + more


def answer_for(problem: Exception) -> JSONResponse | None:
    """The error response a request gets for `problem`; None for an exception that is a bug (a 500)."""
    if isinstance(problem, HTTPException):
        detail = problem.detail if isinstance(problem.detail, str) else json.dumps(problem.detail)
        return error(problem.status_code, detail, problem.headers)  # e.g. a 405's Allow
    if isinstance(problem, Unavailable):
        retry = {"Retry-After": str(problem.retry_after)} if problem.retry_after is not None else None
        return error(503, str(problem), retry)
    if isinstance(problem, ConfigError):
        return error(422, str(problem))
    if isinstance(problem, SeqlabError):
        return error(400, str(problem))
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, problem: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(problem.errors(), request.headers.get("content-type", ""))
        return error(status, message)

    async def known(request: Request, problem: Exception) -> JSONResponse:
        answer = answer_for(problem)
        assert answer is not None  # registered only for the exceptions answer_for knows
        return answer

    for kind in (HTTPException, Unavailable, ConfigError, SeqlabError):
        app.add_exception_handler(kind, known)

    @app.exception_handler(Exception)
    async def bug(request: Request, problem: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=problem)
        return error(500, f"internal error ({type(problem).__name__}); this is a bug in seqlab, please report it")


class ApiKey:
    """ASGI middleware: every request but the public paths must carry `key` as `Authorization: Bearer KEY`
    or `X-API-Key: KEY`; others get 401."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_EXACT or path.startswith(PUBLIC):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ").strip()
        if not hmac.compare_digest(given, self.key):
            problem = "the API key is wrong" if given else "this server needs an API key"
            await error(401, f"{problem}; send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                        {"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _raw_response(status: str, message: str, extra_headers: str = "") -> bytes:
    """A whole HTTP/1.1 error response, for the connection layer (below the app), closing the connection."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra_headers}connection: close\r\n\r\n").encode() + body


def connection_protocol(config: ServeConfig, shed: Callable[[str], ASGIApp | None] | None = None
                        ) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with connection limits that uvicorn lacks: at most `max_connections`
    open (more are answered 503 and closed at once, so idle clients cannot use up the file descriptors);
    a new connection that sends nothing is closed after `keep_alive_timeout_s`, as an idle one is between
    requests; a request line and headers still incomplete `header_timeout_s` after their first byte get
    408, and ones over `max_header_bytes` 431, and the connection is closed. (The body's limits are
    BodyLimit's.) `shed(path)`, for a POST, gives the app that answers it instead of the server's (a 503 for
    an overloaded model) or None: refusing there costs a fraction of a request that goes through the app."""
    import urllib.parse

    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    busy = _raw_response("503 Service Unavailable", f"the server has {config.max_connections:,} connections open, "
                         f"its limit; retry after {config.retry_after_s} s", f"retry-after: {config.retry_after_s}\r\n")
    too_large_message = (f"the request line and headers are over the {config.max_header_bytes:,}-byte limit; "
                         "send fewer or shorter headers")
    too_large = _raw_response("431 Request Header Fields Too Large", too_large_message)
    too_large_app = error(431, too_large_message, {"Connection": "close"})
    slow = _raw_response("408 Request Timeout", f"the request line and headers did not arrive within "
                         f"{config.header_timeout_s:g} s; send them at once")

    class LimitedConnections(HttpToolsProtocol):
        refused = False
        head_timer: asyncio.TimerHandle | None = None  # set while a request line and headers are arriving
        head_bytes = 0  # bytes received while the head was incomplete (the parser holds partial lines back)
        head_size = 0  # the parsed request line and headers

        def connection_made(self, transport) -> None:
            if len(self.server_state.connections) >= config.max_connections:
                self.refused = True
                transport.write(busy)
                transport.close()
                return
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

        def connection_lost(self, exc) -> None:
            if not self.refused:
                self._stop_head_timer()
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return
            head_started = self.head_timer is not None
            super().data_received(data)
            if self.head_timer is not None:  # the head is still incomplete
                # a chunk that began the head may end another request's body: only later chunks count
                self.head_bytes = self.head_bytes + len(data) if head_started else 0
                if self.head_bytes > config.max_header_bytes:
                    self._refuse_head(too_large)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._stop_head_timer()
            self.head_size = 0
            self.head_timer = self.loop.call_later(config.header_timeout_s, self._head_too_slow)

        def on_url(self, url: bytes) -> None:
            self.head_size += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.head_size += len(name) + len(value) + 4  # with ': ' and the line end
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._stop_head_timer()
            refusal: ASGIApp | None = too_large_app if self.head_size > config.max_header_bytes else None
            if refusal is None and shed is not None and self.parser.get_method() == b"POST":
                path = httptools.parse_url(self.url).path.decode("latin-1")
                refusal = shed(urllib.parse.unquote(path) if "%" in path else path)
            if refusal is None:
                super().on_headers_complete()
                return
            app, self.app = self.app, refusal  # this one request is answered by `refusal` instead of by the app
            try:
                super().on_headers_complete()
            finally:
                self.app = app

        def _stop_head_timer(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _head_too_slow(self) -> None:
            self.head_timer = None
            self._refuse_head(slow)

        def _refuse_head(self, response: bytes) -> None:
            self._stop_head_timer()
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:  # not in the middle of another response
                self.transport.write(response)
            self.transport.close()

    return LimitedConnections
