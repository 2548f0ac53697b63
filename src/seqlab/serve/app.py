"""The HTTP service: any run directories as one FastAPI app.

    POST /v1/predict          {"texts": [...], "model": "name?"} -> label, probabilities, tokens, truncated
    POST /v1/explain          {"text": "...", "model": "name?", "method": "auto"} -> a score per word
    GET  /v1/models           the served models
    GET  /v2/...              the Open Inference Protocol (KServe v2): health, metadata, infer (see v2.py)
    GET  /metrics             Prometheus metrics (see metrics.py)
    gRPC on --grpc-port       the Open Inference Protocol's GRPCInferenceService (see grpc_server.py)
    GET  /                    the page: a text box, a model chooser, the prediction and its reasons
    GET  /docs                OpenAPI docs (FastAPI's Swagger UI, its files served locally)

Every prediction goes through the model's Predictor; concurrent /v1/predict and /v2 infer
requests are merged by a MicroBatcher. Model work runs on one thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from seqlab import __version__
from seqlab.errors import ConfigError
from seqlab.predict import Prediction, Predictor, load
from seqlab.serve.batching import MicroBatcher
from seqlab.serve.config import ServeConfig
from seqlab.serve.limits import BodyLimit, install_error_handlers
from seqlab.serve.metrics import Metrics
from seqlab.serve.schemas import (ErrorResponse, ExplainRequest, ExplainResponse, ModelInfo, PredictRequest,
                                  PredictResponse)

STATIC = Path(__file__).resolve().parent / "static"
ERRORS = {code: {"model": ErrorResponse} for code in (400, 404, 413, 415, 422)}


class ServedModel:
    """A Predictor with its name and, when batching, its batcher."""

    def __init__(self, name: str, predictor: Predictor, executor: ThreadPoolExecutor, config: ServeConfig,
                 metrics: Metrics):
        self.name = name
        self.predictor = predictor
        self.executor = executor
        self.metrics = metrics
        one = np.ones((1, 1), dtype=np.int64)  # the start token alone: does this model return attention?
        self.has_attention = predictor.backend(one, one[0]).attention is not None
        self.batcher = (MicroBatcher(self.call_model, executor, config.batch_window_ms / 1000, config.max_batch_size)
                        if config.batching else None)

    def call_model(self, texts: list[str]) -> list[Prediction]:
        """One model call (a batch), on the model thread, counted in the metrics."""
        return self.metrics.model_call(self.name, self.predictor.predict, texts)

    async def predict(self, texts: list[str]) -> list[Prediction]:
        with self.metrics.queue_depth.labels(self.name).track_inprogress():
            if self.batcher is not None:
                return await self.batcher.submit(texts)
            return await asyncio.get_running_loop().run_in_executor(self.executor, self.call_model, texts)

    async def run(self, function, *args):
        """Run other model work (explanations) on the model thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def info(self) -> dict:
        run = self.predictor.run
        methods = ["occlusion"] + (["integrated_gradients"] if self.predictor.backend.name == "pytorch" else [])
        if self.has_attention:
            methods.insert(0, "attention")
        return {"name": self.name, "architecture": run.config["model"]["name"], "backend": self.predictor.backend.name,
                "labels": list(self.predictor.label_names), "maxlen": self.predictor.encoder.config.maxlen,
                "truncating": self.predictor.encoder.config.truncating, "methods": methods,
                "test_accuracy": (run.metrics or {}).get("test", {}).get("accuracy")}


def load_predictors(runs: list[str], backend: str = "pytorch", threads: int | None = None) -> dict[str, Predictor]:
    """Predictors by name, from 'PATH' (named after its folder) or 'NAME=PATH' arguments."""
    predictors: dict[str, Predictor] = {}
    for argument in runs:
        name, _, path = argument.rpartition("=")
        predictor = load(path, backend=backend, threads=threads)
        name = name or predictor.name
        if name in predictors:
            raise ConfigError(f"two models are named {name!r}; name them with NAME=PATH, e.g. {name}2={path}")
        predictors[name] = predictor
    if not predictors:
        raise ConfigError("give at least one run directory to serve")
    return predictors


def create_app(predictors: dict[str, Predictor], config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app serving `predictors` (name -> Predictor); the first is the default model."""
    from seqlab.serve.v2 import v2_router

    config = config or ServeConfig()
    if not predictors:
        raise ConfigError("give at least one model to serve")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqlab-model")
    metrics = Metrics()
    models = {name: ServedModel(name, predictor, executor, config, metrics) for name, predictor in predictors.items()}
    default = next(iter(models))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for model in models.values():
            if model.batcher is not None:
                model.batcher.start()
        grpc_server = None
        if config.grpc_port is not None:
            from seqlab.serve.grpc_server import start_grpc_server

            grpc_server = await start_grpc_server(model_named, config, metrics)
        yield
        if grpc_server is not None:
            await grpc_server.stop(grace=1)
        for model in models.values():
            if model.batcher is not None:
                await model.batcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="seqlab", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Text classifiers trained with seqlab: predictions, explanations, and the Open Inference "
                              "Protocol (KServe v2). Errors are JSON objects {\"error\": message}.")
    app.state.models = models
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    metrics.install(app)
    install_error_handlers(app)

    def model_named(name: str | None) -> ServedModel:
        name = name or default
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; served models: {', '.join(models)}")
        return models[name]

    @app.post("/v1/predict", response_model=PredictResponse, responses=ERRORS, tags=["seqlab"])
    async def predict(request: PredictRequest):
        """Classify 1 to 256 texts; texts longer than the model's maxlen are cut as in training."""
        model = model_named(request.model)
        predictions = await model.predict(request.texts)
        return JSONResponse({"model": model.name, "backend": model.predictor.backend.name,
                             "predictions": [p.to_dict() for p in predictions]})

    @app.post("/v1/explain", response_model=ExplainResponse, responses=ERRORS, tags=["seqlab"])
    async def explain(request: ExplainRequest):
        """Score each word of one text by how much it pushed the prediction."""
        model = model_named(request.model)
        explanation = await model.run(model.predictor.explain, request.text, request.method, request.target)
        return JSONResponse({"model": model.name, "backend": model.predictor.backend.name, **explanation.to_dict()})

    @app.get("/v1/models", response_model=list[ModelInfo], tags=["seqlab"])
    async def list_models():
        """The served models, the default first."""
        return JSONResponse([model.info() for model in models.values()])

    app.include_router(v2_router(models, model_named))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)
    return app


def _mount_docs(app: FastAPI) -> None:
    """FastAPI's Swagger UI with its JavaScript and CSS from the swagger-ui-bundle package: no CDN."""
    import swagger_ui_bundle

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="seqlab API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def run_server(predictors: dict[str, Predictor], config: ServeConfig, log_level: str = "warning") -> None:
    """Serve until interrupted (what `seqlab serve` does)."""
    import torch
    import uvicorn

    torch.set_num_threads(config.threads)
    if config.grpc_port is not None:
        from seqlab.serve.grpc_server import check_port_free

        check_port_free(config.host, config.grpc_port)
    app = create_app(predictors, config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False)
