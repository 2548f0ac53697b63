"""Request limits and error responses: every bad request gets a 4xx with a message, never a 500.

- bodies over the limit are refused with 413 before they are read in full;
- request bodies must be UTF-8 (400 naming the first bad byte);
- JSON that is not JSON is a 400, JSON of the wrong shape a 422, each naming the field and the fix;
- errors are JSON objects {"error": "..."}, the Open Inference Protocol's error format.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seqlab.errors import ConfigError, SeqlabError
from seqlab.serve.config import MAX_BODY_BYTES

log = logging.getLogger("seqlab.serve")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BodyLimit:
    """ASGI middleware: reads each request body (up to `max_bytes`), checks it is UTF-8, then replays it."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = error(413, f"the request body is over the {self.max_bytes:,}-byte limit "
                               f"({self.max_bytes // 1024} KiB); send fewer or shorter texts per request")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error(400, "the Content-Length header is not a number")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        json_length = dict(scope["headers"]).get(b"inference-header-content-length", b"")  # binary tensors follow
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, problem: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(problem.errors(), request.headers.get("content-type", ""))
        return error(status, message)

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, problem: HTTPException) -> JSONResponse:
        detail = problem.detail if isinstance(problem.detail, str) else json.dumps(problem.detail)
        return error(problem.status_code, detail)

    @app.exception_handler(ConfigError)
    async def bad_option(request: Request, problem: ConfigError) -> JSONResponse:
        return error(422, str(problem))

    @app.exception_handler(SeqlabError)
    async def bad_input(request: Request, problem: SeqlabError) -> JSONResponse:
        return error(400, str(problem))
