"""The Open Inference Protocol (KServe v2, JSON over REST), so standard clients can call seqlab models.

    GET  /v2                                   server metadata
    GET  /v2/health/live, /v2/health/ready     liveness, readiness
    GET  /v2/models/{name}[/versions/1]        model metadata: one BYTES input "text", four outputs
    GET  /v2/models/{name}/ready               model readiness
    POST /v2/models/{name}[/versions/1]/infer  {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [N], "data": [...]}]}

Outputs: "label" (BYTES [N]), "probabilities" (FP32 [N, classes], classes in the order of the
metadata's parameters.labels), "tokens" (INT64 [N]) and "truncated" (BOOL [N]).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from seqlab import __version__
from seqlab.predict import Prediction
from seqlab.serve.schemas import ERROR_CODES, MAX_TEXTS, ErrorResponse, InferRequest, InferResponse, ModelMetadata

VERSION = "1"  # a run directory is one immutable model version
OUTPUTS = ("label", "probabilities", "tokens", "truncated")
ERRORS = {code: {"model": ErrorResponse} for code in ERROR_CODES}
NOT_READY = {503: {"model": ErrorResponse, "description": "Not ready: the error says why"}}


def _flatten(data: list[Any]) -> list[Any]:
    flat = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _texts(request: InferRequest) -> list[str]:
    if len(request.inputs) != 1:
        raise HTTPException(400, f"expected exactly one input named 'text', got {len(request.inputs)} inputs")
    tensor = request.inputs[0]
    if tensor.name != "text":
        raise HTTPException(400, f"unknown input {tensor.name!r}; the model's one input is 'text'")
    if tensor.datatype != "BYTES":
        raise HTTPException(400, f"input 'text' must have datatype BYTES, not {tensor.datatype!r}")
    texts = _flatten(tensor.data)
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise HTTPException(422, f"inputs.0.data: element {bad} is {type(texts[bad]).__name__}, not a string")
    if any(size < 0 for size in tensor.shape) or math.prod(tensor.shape) != len(texts):
        raise HTTPException(400, f"input 'text' has shape {tensor.shape} but {len(texts)} elements")
    if not texts:
        raise HTTPException(422, "inputs.0.data is empty; send at least one text")
    if len(texts) > MAX_TEXTS:
        raise HTTPException(422, f"{len(texts)} texts is more than the {MAX_TEXTS} allowed per request; "
                                 "split them over several requests")
    return texts


def _outputs(predictions: list[Prediction], labels: tuple[str, ...], wanted: list[str]) -> list[dict]:
    count = len(predictions)
    tensors = {
        "label": {"shape": [count], "datatype": "BYTES", "data": [p.label for p in predictions]},
        "probabilities": {"shape": [count, len(labels)], "datatype": "FP32",
                          "data": [p.probabilities[label] for p in predictions for label in labels]},
        "tokens": {"shape": [count], "datatype": "INT64", "data": [p.tokens for p in predictions]},
        "truncated": {"shape": [count], "datatype": "BOOL", "data": [p.truncated for p in predictions]},
    }
    return [{"name": name, **tensors[name]} for name in wanted]


def v2_router(models: dict, model_named: Callable) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (v2)"])

    def versioned(name: str, version: str | None):
        model = model_named(name)
        if version is not None and version != VERSION:
            raise HTTPException(404, f"model {name!r} has only version {VERSION}, not {version!r}")
        return model

    @router.get("")
    async def server_metadata():
        return {"name": "seqlab", "version": __version__, "extensions": []}

    @router.get("/health/live")
    async def live():
        return {"live": True}

    @router.get("/health/ready", responses=NOT_READY)
    async def ready():
        """Ready when every model can answer (models are loaded before the server starts listening)."""
        problems = [f"model {model.name!r}: {model.problem}" for model in models.values() if model.problem]
        if problems:
            return JSONResponse({"ready": False, "error": "; ".join(problems)}, status_code=503)
        return {"ready": True}

    @router.get("/models/{name}/ready", responses=ERRORS)
    @router.get("/models/{name}/versions/{version}/ready", responses=ERRORS, include_in_schema=False)
    async def model_ready(name: str, version: str | None = None):
        model = versioned(name, version)
        if model.problem:
            return JSONResponse({"name": name, "ready": False, "error": model.problem}, status_code=503)
        return {"name": name, "ready": True}

    @router.get("/models/{name}", response_model=ModelMetadata, responses=ERRORS)
    @router.get("/models/{name}/versions/{version}", response_model=ModelMetadata, responses=ERRORS,
                include_in_schema=False)
    async def model_metadata(name: str, version: str | None = None):
        model = versioned(name, version)
        labels = list(model.predictor.label_names)
        return JSONResponse({
            "name": model.name, "versions": [VERSION],
            "platform": "onnxruntime_onnx" if model.predictor.backend.name == "onnxruntime" else "pytorch_torchscript",
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                        {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(labels)]},
                        {"name": "tokens", "datatype": "INT64", "shape": [-1]},
                        {"name": "truncated", "datatype": "BOOL", "shape": [-1]}],
            "parameters": {"labels": labels, "maxlen": model.predictor.encoder.config.maxlen,
                           "backend": model.predictor.backend.name, "max_texts": MAX_TEXTS},
        })

    @router.post("/models/{name}/infer", response_model=InferResponse, responses=ERRORS)
    @router.post("/models/{name}/versions/{version}/infer", response_model=InferResponse, responses=ERRORS,
                 include_in_schema=False)
    async def infer(name: str, request: InferRequest, version: str | None = None):
        model = versioned(name, version)
        texts = _texts(request)
        wanted = [output.name for output in request.outputs] if request.outputs else list(OUTPUTS)
        unknown = [output for output in wanted if output not in OUTPUTS]
        if unknown:
            raise HTTPException(400, f"unknown output {unknown[0]!r}; outputs: {', '.join(OUTPUTS)}")
        predictions = await model.predict(texts)
        body = {"model_name": model.name, "model_version": VERSION,
                "outputs": _outputs(predictions, model.predictor.label_names, wanted)}
        if request.id is not None:
            body["id"] = request.id
        return JSONResponse(body)

    return router
