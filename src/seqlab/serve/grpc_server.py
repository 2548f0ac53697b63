"""The Open Inference Protocol over gRPC: `inference.GRPCInferenceService`, served with grpcio on its own port.

The service and its messages are those of the published protocol, proto/open_inference_grpc.proto
(KServe's open-inference-protocol repository, specification/protocol/, unchanged). Beside it,
proto/open_inference_grpc.binpb is that file compiled to a FileDescriptorSet, made with

    cd src/seqlab/serve/proto
    python -m grpc_tools.protoc -I. --descriptor_set_out=open_inference_grpc.binpb open_inference_grpc.proto

(a test checks it still matches the .proto). The messages are built from it at run time in a
descriptor pool of their own: no generated Python to keep in step with the protobuf release,
and no clash with clients such as tritonclient that register the same `inference.*` names
in the default pool of the same process. Requests go through the same protocol code as REST
(v2.py) and the same batcher; outputs are sent as raw_output_contents, as Triton does.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Callable

from starlette.exceptions import HTTPException

from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.extras import require
from seqlab.serve.binary import Tensor, decode, encode, texts
from seqlab.serve.config import ServeConfig
from seqlab.serve.metrics import Metrics
from seqlab.serve.v2 import VERSION, infer, model_metadata, server_metadata, versioned, wanted_outputs

if TYPE_CHECKING:
    from google.protobuf.message import Message

log = logging.getLogger("seqlab.serve")
SERVICE = "inference.GRPCInferenceService"
METHODS = {  # method: (request message, response message)
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
}
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
            "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
            "FP64": "fp64_contents", "BYTES": "bytes_contents"}
HTTP_TO_GRPC = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                413: "RESOURCE_EXHAUSTED", 415: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT",
                429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@lru_cache(maxsize=1)
def messages() -> dict[str, type[Message]]:
    """The protocol's message classes by name, from the compiled descriptor in a private pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    compiled = (files("seqlab.serve") / "proto" / "open_inference_grpc.binpb").read_bytes()
    for file in descriptor_pb2.FileDescriptorSet.FromString(compiled).file:
        pool.Add(file)
    names = {name for pair in METHODS.values() for name in pair}
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{name}")) for name in names}


def _inputs(request) -> list[Tensor]:
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        raise DataError(f"{len(request.raw_input_contents)} raw_input_contents for {len(request.inputs)} inputs; "
                        "send raw contents for every input or for none")
    tensors = []
    for index, tensor in enumerate(request.inputs):
        if request.raw_input_contents:
            data = decode(tensor.name, tensor.datatype, request.raw_input_contents[index])
        elif tensor.datatype == "BYTES":
            data = texts(tensor.name, list(tensor.contents.bytes_contents))
        else:
            data = list(getattr(tensor.contents, CONTENTS[tensor.datatype])) if tensor.datatype in CONTENTS else []
        tensors.append(Tensor(tensor.name, tensor.datatype, list(tensor.shape), data))
    return tensors


class InferenceService:
    """The six methods of GRPCInferenceService over the served models."""

    def __init__(self, models: dict, model_named: Callable):
        self.models = models
        self.model_named = model_named
        self.types = messages()

    async def ServerLive(self, request):
        return self.types["ServerLiveResponse"](live=True)

    async def ServerReady(self, request):
        # Models are loaded before the server starts; one that cannot answer (serve/served.py) is not ready.
        return self.types["ServerReadyResponse"](ready=all(model.problem is None for model in self.models.values()))

    async def ModelReady(self, request):
        model = versioned(self.model_named, request.name, request.version)
        return self.types["ModelReadyResponse"](ready=model.problem is None)

    async def ServerMetadata(self, request):
        return self.types["ServerMetadataResponse"](**server_metadata())

    async def ModelMetadata(self, request):
        metadata = model_metadata(versioned(self.model_named, request.name, request.version))
        properties = {key: value if isinstance(value, str) else json.dumps(value)  # a map of strings in gRPC
                      for key, value in metadata.pop("parameters").items()}
        return self.types["ModelMetadataResponse"](**metadata, properties=properties)

    async def ModelInfer(self, request):
        model = versioned(self.model_named, request.model_name, request.model_version)
        wanted = wanted_outputs([(output.name, output.parameters) for output in request.outputs])
        tensors = await infer(model, _inputs(request), wanted)
        response = self.types["ModelInferResponse"](model_name=model.name, model_version=VERSION, id=request.id)
        for tensor in tensors:
            response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            response.raw_output_contents.append(encode(tensor))
        return response


def _handler(service: InferenceService, method: str, metrics: Metrics):
    """`method` of `service` as a grpcio handler: errors become gRPC status codes with their message, and counted."""
    import grpc

    request_type, response_type = (service.types[name] for name in METHODS[method])
    call = getattr(service, method)

    async def handle(request, context):
        start, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            return await call(request)
        except HTTPException as problem:
            code = getattr(grpc.StatusCode, HTTP_TO_GRPC.get(problem.status_code, "UNKNOWN"))
            message = str(problem.detail)
        except SeqlabError as problem:  # DataError, ConfigError: the request is at fault
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(problem)
        except Exception as problem:  # noqa: BLE001 - answered as INTERNAL, as HTTP answers 500
            log.exception("gRPC %s failed", method)
            code, message = grpc.StatusCode.INTERNAL, f"{type(problem).__name__}: {problem}"
        finally:
            metrics.answered("grpc", method, code.name, code != grpc.StatusCode.OK, time.perf_counter() - start)
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=request_type.FromString,
                                               response_serializer=response_type.SerializeToString)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(host: str, port: int) -> None:
    """A ConfigError naming the port if something already listens on it (before the HTTP server starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: only a listener is in the way
        try:
            probe.bind((host, port))
        except OSError as problem:
            raise ConfigError(f"cannot serve gRPC on {_address(host, port)}: {problem.strerror}; "
                              "choose another --grpc-port") from None


async def start_grpc_server(models: dict, model_named: Callable, config: ServeConfig, metrics: Metrics):
    """A running grpc.aio server for the models on config.host:config.grpc_port; `await server.stop(grace)` ends it."""
    require("grpc")
    import grpc

    host, port = config.host, config.grpc_port
    assert port is not None  # run_server starts gRPC only for --grpc-port
    service = InferenceService(models, model_named)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0),  # a busy port is an error, not shared
                                      ("grpc.max_receive_message_length", config.max_body_bytes)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, {method: _handler(service, method, metrics) for method in METHODS}),))
    try:
        server.add_insecure_port(_address(host, port))
    except RuntimeError as problem:
        raise ConfigError(f"cannot serve gRPC on {_address(host, port)} ({problem}); "
                          "choose another --grpc-port") from None
    await server.start()
    return server
