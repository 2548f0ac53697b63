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
requests are merged by a MicroBatcher. Predictions run on one thread, explanations on another,
both off the event loop, so health checks never wait behind the model (see served.py). The
server's limits (connections, timeouts, queues, body size) are ServeConfig's, see docs/serving.md.
"""

from __future__ import annotations

import gc
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from seqlab.extras import require

require("serve")  # before FastAPI is imported: without the extra, one line naming it

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from seqlab import __version__
from seqlab.errors import ConfigError
from seqlab.explain import METHODS
from seqlab.predict import Predictor, load
from seqlab.serve.config import ServeConfig
from seqlab.serve.fastlane import FastLane, Route, prediction_route
from seqlab.serve.limits import ApiKey, BodyLimit, answer_for, connection_protocol, install_error_handlers
from seqlab.serve.metrics import HttpMetrics, Metrics
from seqlab.serve.schemas import (ERROR_CODES, ErrorResponse, ExplainRequest, ExplainResponse, ModelInfo,
                                  PredictRequest, PredictResponse)
from seqlab.serve.served import ServedModel

STATIC = Path(__file__).resolve().parent / "static"
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in ERROR_CODES}
FILES_BESIDE_CONNECTIONS = 128  # file descriptors the server needs besides one per connection


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


def create_app(predictors: dict[str, Predictor], config: ServeConfig | None = None, *,
               fast_lane: bool = True) -> FastAPI:
    """The FastAPI app serving `predictors` (name -> Predictor); the first is the default model. `fast_lane=False`
    answers every request through FastAPI's routes, as the lane's oracle (fastlane.py)."""
    from seqlab.serve.v2 import LIVE, infer_response, ready_response, v2_router, versioned

    config = config or ServeConfig()
    if not predictors:
        raise ConfigError("give at least one model to serve")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqlab-model")
    explain_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqlab-explain")
    metrics = Metrics()
    models = {name: ServedModel(name, predictor, executor, explain_executor, config, metrics)
              for name, predictor in predictors.items()}
    default = next(iter(models))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for model in models.values():
            model.batcher.start()
        grpc_server = None
        if config.grpc_port is not None:
            from seqlab.serve.grpc_server import start_grpc_server

            grpc_server = await start_grpc_server(models, model_named, config, metrics)
        yield
        if grpc_server is not None:
            await grpc_server.stop(grace=1)
        for model in models.values():
            await model.batcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)
        explain_executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="seqlab", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Text classifiers trained with seqlab: predictions, explanations, and the Open Inference "
                              "Protocol (KServe v2). Errors are JSON objects {\"error\": message}.")
    app.state.models = models
    if fast_lane:
        app.add_middleware(FastLane, predict=lambda request: predict_response(request),  # innermost: after the limits
                           infer=lambda name, version, request: infer_response(versioned(model_named, name, version),
                                                                               request),
                           health={"/v2/health/live": lambda: JSONResponse(LIVE),
                                   "/v2/health/ready": lambda: ready_response(models)})
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, timeout=config.body_timeout_s)
    metrics.install(app)  # after BodyLimit, so its 413s and 408s are counted
    key = config.api_key()
    if key is not None:
        app.add_middleware(ApiKey, key=key)  # added last, so it runs first: no body is read without the key
    install_error_handlers(app)

    def model_named(name: str | None) -> ServedModel:
        name = default if name is None else name  # "" names no model: 404, as the schema's enum says
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; served models: {', '.join(models)}")
        return models[name]

    async def predict_response(request: PredictRequest) -> JSONResponse:
        model = model_named(request.model)
        predictions = await model.predict(request.texts)
        return JSONResponse({"model": model.name, "backend": model.predictor.backend.name,
                             "predictions": [p.to_dict() for p in predictions]})

    @app.post("/v1/predict", response_model=PredictResponse, responses=ERRORS, tags=["seqlab"])
    async def predict(request: PredictRequest):
        """Classify 1 to 256 texts; texts longer than the model's maxlen are cut as in training."""
        return await predict_response(request)

    @app.post("/v1/explain", response_model=ExplainResponse, responses=ERRORS, tags=["seqlab"])
    async def explain(request: ExplainRequest):
        """Score each word of one text by how much it pushed the prediction; the cost and the answer are
        bounded by the model's maxlen, whatever the text's length."""
        model = model_named(request.model)
        explanation = await model.explain(request.text, request.method, request.target)
        return JSONResponse({"model": model.name, "backend": model.predictor.backend.name, **explanation})

    @app.get("/v1/models", response_model=list[ModelInfo], tags=["seqlab"])
    async def list_models():
        """The served models, the default first."""
        return JSONResponse([model.info() for model in models.values()])

    app.include_router(v2_router(models, model_named))

    def shed(path: str) -> ASGIApp | None:
        """For the connection layer: the 503 that a prediction request for an overloaded model gets before
        it is read (a /v1/predict names its model in its body: known here when only one is served)."""
        route = prediction_route(path)
        if route is None:
            return None
        template, name, _ = route
        if name is None and len(models) > 1:
            return None
        model = models.get(default if name is None else name)
        problem = None if model is None else model.overload()
        refusal = None if problem is None else answer_for(problem)
        if refusal is None:
            return None
        counted: ASGIApp = HttpMetrics(refusal, metrics)
        if key is not None:
            counted = ApiKey(counted, key=key)  # as in the app: no answer but 401 without the key

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            scope["route"] = Route(template)
            await counted(scope, receive, send)

        return answer

    app.state.shed = shed

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)
    _narrow_schema(app, models, secured=key is not None)
    return app


def _narrow_schema(app: FastAPI, models: dict[str, ServedModel], secured: bool) -> None:
    """Make the OpenAPI schema say exactly what these models accept: model names, classes and explanation
    methods as enums (those every served model has, so anything the schema allows is answered)."""
    build = app.openapi
    infos = [model.info() for model in models.values()]
    names = list(models)
    labels = [label for label in infos[0]["labels"] if all(label in info["labels"] for info in infos)]
    methods = [method for method in METHODS if method == "auto" or all(method in info["methods"] for info in infos)]

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema["components"]["schemas"]
        for request in ("PredictRequest", "ExplainRequest"):
            components[request]["properties"]["model"]["anyOf"] = [{"type": "string", "enum": names},
                                                                   {"type": "null"}]
        explain = components["ExplainRequest"]["properties"]
        explain["target"]["anyOf"] = [{"type": "string", "enum": labels}, {"type": "null"}]
        explain["method"]["enum"] = methods
        for operations in schema["paths"].values():
            for operation in operations.values():
                # v2's version is a path parameter of the /versions/{version}/ routes (hidden), not a query one
                operation["parameters"] = [parameter for parameter in operation.get("parameters", [])
                                           if (parameter["in"], parameter["name"]) != ("query", "version")]
                for parameter in operation["parameters"]:
                    if parameter["in"] == "path" and parameter["name"] == "name":
                        parameter["schema"]["enum"] = names
        if secured:
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
            for path, operations in schema["paths"].items():
                if not path.startswith("/v2/health/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def _mount_docs(app: FastAPI) -> None:
    """FastAPI's Swagger UI with its JavaScript and CSS from the swagger-ui-bundle package: no CDN."""
    import swagger_ui_bundle

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    schema_url = app.openapi_url
    assert schema_url is not None  # create_app keeps FastAPI's schema route

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=schema_url, title="seqlab API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def run_server(predictors: dict[str, Predictor], config: ServeConfig, log_level: str = "warning") -> None:
    """Serve until interrupted (what `seqlab serve` does)."""
    import torch
    import uvicorn

    torch.set_num_threads(config.threads)
    warning = config.exposure_warning()
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
    _make_room_for(config.max_connections)
    if config.grpc_port is not None:
        from seqlab.serve.grpc_server import check_port_free

        check_port_free(config.host, config.grpc_port)
    app = create_app(predictors, config)
    gc.freeze()  # what is loaded by now lives as long as the server: out of the collector's sweeps, which stall the event loop
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False,
                http=connection_protocol(config, app.state.shed), timeout_keep_alive=config.keep_alive_timeout_s,  # type: ignore[arg-type]
                backlog=config.backlog, timeout_graceful_shutdown=config.shutdown_timeout_s)  # type: ignore[arg-type]
    # (uvicorn annotates both timeouts int; it waits any number of seconds, through asyncio)


def _make_room_for(connections: int) -> None:
    """Raise the process's open-file limit (up to the hard limit) so `connections` connections fit; warn if not."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    wanted = connections + FILES_BESIDE_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    allowed = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
    except (ValueError, OSError):
        allowed = soft
    if allowed < wanted:
        print(f"warning: this process may open only {allowed:,} files, too few for --max-connections "
              f"{connections:,}; lower it to {max(1, allowed - FILES_BESIDE_CONNECTIONS):,} or raise `ulimit -n`",
              file=sys.stderr)
