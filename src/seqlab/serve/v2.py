"""The Open Inference Protocol (KServe v2) over REST, so standard clients can call seqlab models.

    GET  /v2                                   server metadata
    GET  /v2/health/live, /v2/health/ready     liveness, readiness
    GET  /v2/models/{name}[/versions/1]        model metadata: one BYTES input "text", four outputs
    GET  /v2/models/{name}/ready               model readiness
    POST /v2/models/{name}[/versions/1]/infer  {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [N], "data": [...]}]}

Outputs: "label" (BYTES [N]), "probabilities" (FP32 [N, classes], classes in the order of the
metadata's parameters.labels), "tokens" (INT64 [N]) and "truncated" (BOOL [N]).

Infer bodies are read as Triton's and KServe's clients send them: JSON with no Content-Type or
as application/octet-stream, and Triton's binary tensor data extension both ways (binary.py).
The functions here that take no HTTP request are the protocol itself, shared with grpc_server.py.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from seqlab import __version__
from seqlab.serve.binary import HEADER_LENGTH, Tensor, json_from_binary_body, response_body, wants_binary
from seqlab.serve.schemas import ERROR_CODES, MAX_TEXTS, ErrorResponse, InferRequest, InferResponse, ModelMetadata

VERSION = "1"  # a run directory is one immutable model version
OUTPUTS = ("label", "probabilities", "tokens", "truncated")
EXTENSIONS = ["binary_tensor_data"]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in ERROR_CODES}
NOT_READY: dict[int | str, dict[str, Any]] = {503: {"model": ErrorResponse, "description": "Not ready: the error says why"}}
PLATFORMS = {"pytorch": "pytorch", "onnxruntime": "onnxruntime_onnx"}  # KServe's format name; Triton's ONNX platform


def _flatten(data: list[Any]) -> list[Any]:
    flat = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def texts_from(inputs: list[Tensor]) -> list[str]:
    """The texts of an infer request's inputs, or an HTTPException saying what is wrong with them."""
    if len(inputs) != 1:
        raise HTTPException(400, f"expected exactly one input named 'text', got {len(inputs)} inputs")
    tensor = inputs[0]
    if tensor.name != "text":
        raise HTTPException(400, f"unknown input {tensor.name!r}; the model's one input is 'text'")
    if tensor.datatype != "BYTES":
        raise HTTPException(400, f"input 'text' must have datatype BYTES, not {tensor.datatype!r}")
    texts = _flatten(tensor.data)
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise HTTPException(422, f"inputs.0.data: element {bad} is {type(texts[bad]).__name__}, not a string")
    if any(size < 0 for size in tensor.shape) or math.prod(tensor.shape) != len(texts):
        raise HTTPException(400, f"input 'text' has shape {list(tensor.shape)} but {len(texts)} elements")
    if not texts:
        raise HTTPException(422, "inputs.0.data is empty; send at least one text")
    if len(texts) > MAX_TEXTS:
        raise HTTPException(422, f"{len(texts)} texts is more than the {MAX_TEXTS} allowed per request; "
                                 "split them over several requests")
    return texts


def wanted_outputs(requested: list[tuple[str, Any]]) -> list[str]:
    """The outputs to return, in the order asked for as (name, parameters) pairs; all of them when none are named."""
    names = [name for name, _ in requested]
    unknown = [name for name in names if name not in OUTPUTS]
    if unknown:
        raise HTTPException(400, f"unknown output {unknown[0]!r}; outputs: {', '.join(OUTPUTS)}")
    classified = [name for name, parameters in requested if "classification" in (parameters or {})]
    if classified:
        raise HTTPException(400, f"output {classified[0]!r} asks for classification (class_count); seqlab does not "
                                 "implement that extension: read the 'probabilities' output instead")
    return names or list(OUTPUTS)


async def infer(model, inputs: list[Tensor], wanted: list[str]) -> list[Tensor]:
    """Run the texts of `inputs` through `model` (a ServedModel) and return the `wanted` output tensors."""
    predictions = await model.predict(texts_from(inputs))
    labels = model.predictor.label_names
    count = len(predictions)
    tensors = {
        "label": Tensor("label", "BYTES", [count], [p.label for p in predictions]),
        "probabilities": Tensor("probabilities", "FP32", [count, len(labels)],
                                [p.probabilities[label] for p in predictions for label in labels]),
        "tokens": Tensor("tokens", "INT64", [count], [p.tokens for p in predictions]),
        "truncated": Tensor("truncated", "BOOL", [count], [p.truncated for p in predictions]),
    }
    return [tensors[name] for name in wanted]


async def infer_response(model, request: InferRequest) -> Response:
    """The HTTP answer to a validated infer request for `model` (a ServedModel): JSON, or binary where asked."""
    inputs = [Tensor(tensor.name, tensor.datatype, tensor.shape, tensor.data) for tensor in request.inputs]
    wanted = wanted_outputs([(output.name, output.parameters) for output in request.outputs or []])
    tensors = await infer(model, inputs, wanted)
    header = {"model_name": model.name, "model_version": VERSION}
    if request.id is not None:
        header["id"] = request.id
    asked = request.model_dump(exclude_none=True)
    body, header_length = response_body(header, tensors, {name for name in wanted if wants_binary(asked, name)})
    if header_length is None:
        return Response(body, media_type="application/json")
    return Response(body, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header_length)})


def ready_response(models: dict) -> JSONResponse:
    """Ready when every model can answer (models are loaded before the server starts listening)."""
    problems = [f"model {model.name!r}: {model.problem}" for model in models.values() if model.problem]
    if problems:
        return JSONResponse({"ready": False, "error": "; ".join(problems)}, status_code=503)
    return JSONResponse({"ready": True})


LIVE = {"live": True}


def server_metadata() -> dict:
    return {"name": "seqlab", "version": __version__, "extensions": EXTENSIONS}


def model_metadata(model) -> dict:
    """What a client needs to call `model` (a ServedModel): its tensors, platform and labels."""
    labels = list(model.predictor.label_names)
    return {
        "name": model.name, "versions": [VERSION],
        "platform": PLATFORMS.get(model.predictor.backend.name, model.predictor.backend.name),
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(labels)]},
                    {"name": "tokens", "datatype": "INT64", "shape": [-1]},
                    {"name": "truncated", "datatype": "BOOL", "shape": [-1]}],
        "parameters": {"labels": labels, "maxlen": model.predictor.encoder.config.maxlen,
                       "backend": model.predictor.backend.name, "max_texts": MAX_TEXTS},
    }


def versioned(model_named: Callable, name: str, version: str | None):
    """The model called `name`, checking `version` (empty or None: the only one)."""
    model = model_named(name)
    if version and version != VERSION:
        raise HTTPException(404, f"model {name!r} has only version {VERSION}, not {version!r}")
    return model


class InferBodyRoute(APIRoute):
    """A route that reads a body without a JSON Content-Type, or in the binary extension, as the JSON it stands for."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def as_json(request: Request) -> Response:
            header_length = request.headers.get(HEADER_LENGTH)
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            already_json = header_length is None and content_type not in ("", "application/octet-stream")
            if request.method != "POST" or already_json:
                return await handler(request)
            body = await request.body()
            if header_length is not None:
                body = json_from_binary_body(body, header_length.strip())
            headers = [(key, value) for key, value in request.scope["headers"]
                       if key not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

            async def replay() -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            return await handler(Request({**request.scope, "headers": headers}, replay))

        return as_json


def v2_router(models: dict, model_named: Callable) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (v2)"], route_class=InferBodyRoute)

    @router.get("")
    async def server_metadata_route():
        return server_metadata()

    @router.get("/health/live")
    async def live():
        return LIVE

    @router.get("/health/ready", responses=NOT_READY)
    async def ready():
        """Ready when every model can answer (models are loaded before the server starts listening)."""
        return ready_response(models)

    @router.get("/models/{name}/ready", responses=ERRORS)
    @router.get("/models/{name}/versions/{version}/ready", responses=ERRORS, include_in_schema=False)
    async def model_ready(name: str, version: str | None = None):
        model = versioned(model_named, name, version)
        if model.problem:
            return JSONResponse({"name": name, "ready": False, "error": model.problem}, status_code=503)
        return {"name": name, "ready": True}

    @router.get("/models/{name}", response_model=ModelMetadata, responses=ERRORS)
    @router.get("/models/{name}/versions/{version}", response_model=ModelMetadata, responses=ERRORS,
                include_in_schema=False)
    async def model_metadata_route(name: str, version: str | None = None):
        return JSONResponse(model_metadata(versioned(model_named, name, version)))

    @router.post("/models/{name}/infer", response_model=InferResponse, responses=ERRORS)
    @router.post("/models/{name}/versions/{version}/infer", response_model=InferResponse, responses=ERRORS,
                 include_in_schema=False)
    async def infer_route(name: str, request: InferRequest, version: str | None = None):
        """Classify texts. Also accepts Triton's binary tensor data extension (`Inference-Header-Content-Length`)."""
        return await infer_response(versioned(model_named, name, version), request)

    return router
