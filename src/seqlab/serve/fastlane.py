"""The requests that make up a server's load, answered without FastAPI's routing and request machinery.

    POST /v1/predict                                  a JSON body that PredictRequest accepts
    POST /v2/models/{name}[/versions/{version}]/infer  a JSON body that InferRequest accepts
    GET  /v2/health/live, /v2/health/ready            always

Each is answered by the same function as its FastAPI route (app.py, v2.py), after the same pydantic
model has validated the body (pydantic's JSON validation, in Rust). Everything else goes on to the
routes unchanged: a body that does not validate (so every 4xx message comes from one place), another
Content-Type, binary tensors, any other path. The lane sits inside the server's other middleware, so
API keys, body limits and metrics apply to it as to the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seqlab.serve.limits import answer_for
from seqlab.serve.schemas import InferRequest, PredictRequest

PREDICT = "/v1/predict"
HEALTH = ("/v2/health/live", "/v2/health/ready")
INFER = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")

PredictAnswer = Callable[[PredictRequest], Awaitable[Response]]
InferAnswer = Callable[[str, "str | None", InferRequest], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """What the metrics read of a request's route (scope["route"]): its path template."""

    path: str


class FastLane:
    """ASGI middleware: answers the requests above itself and hands the rest to `app` (the routes)."""

    def __init__(self, app: ASGIApp, predict: PredictAnswer, infer: InferAnswer,
                 health: dict[str, Callable[[], Response]]):
        self.app = app
        self.predict = predict
        self.infer = infer
        self.health = health
        self.predict_request = TypeAdapter(PredictRequest)
        self.infer_request = TypeAdapter(InferRequest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in self.health:
            scope["route"] = Route(path)
            await self.health[path]()(scope, receive, send)
            return
        if method != "POST" or not _json(scope):
            await self.app(scope, receive, send)
            return
        route = prediction_route(path)
        if route is None:
            await self.app(scope, receive, send)
        elif route[0] == PREDICT:
            await self._answer(scope, receive, send, PREDICT, self.predict_request, self.predict)
        else:
            template, name, version = route
            await self._answer(scope, receive, send, template, self.infer_request,
                               lambda request: self.infer(name, version, request))  # type: ignore[arg-type]

    async def _answer(self, scope: Scope, receive: Receive, send: Send, template: str, adapter: TypeAdapter,
                      answer: Callable) -> None:
        """Validate the body with `adapter` and answer it, or pass the request (its body replayed) to the routes."""
        body, more, first = b"", True, None
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away; the routes see it too
                first = message
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            request = None if first is not None else adapter.validate_json(body)
        except ValidationError:
            request = None
        if request is None:
            await self.app(scope, _replay(body, first, receive), send)
            return
        scope["route"] = Route(template)
        try:
            response = await answer(request)
        except Exception as problem:
            response = answer_for(problem)
            if response is None:
                raise
        await response(scope, receive, send)


def prediction_route(path: str) -> tuple[str, str | None, str | None] | None:
    """(path template, model name, version) of a prediction request's path, None for other paths; /v1/predict
    names its model in the body."""
    if path == PREDICT:
        return PREDICT, None, None
    parts = path.split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
    if len(parts) in (5, 7) and parts[1:3] == ["v2", "models"] and parts[-1] == "infer" and all(parts[3:-1]) \
            and (len(parts) == 5 or parts[4] == "versions"):
        return INFER[len(parts) == 7], parts[3], (parts[5] if len(parts) == 7 else None)
    return None


def _json(scope: Scope) -> bool:
    """Whether the request says its body is JSON (and not Triton's binary tensors)."""
    content_type = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"inference-header-content-length":
            return False
    return content_type is not None and content_type.split(b";")[0].strip().lower() == b"application/json"


def _replay(body: bytes, first: Message | None, receive: Receive) -> Receive:
    """A `receive` that gives `body` again (or the message that ended it), then what `receive` gives."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first if first is not None else {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
