"""Server options, defined once (the CLI surfaces these defaults); no web imports here."""

from __future__ import annotations

from dataclasses import dataclass

from seqlab.errors import ConfigError

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB per request body; larger gets 413


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # loopback only; use 0.0.0.0 to accept other machines
    port: int = 8000
    batching: bool = True  # merge concurrent requests into one model call
    batch_window_ms: float = 2.0  # how long a batch waits for more requests after the first one
    max_batch_size: int = 64  # texts after which a batch stops collecting
    threads: int = 1  # PyTorch / ONNX Runtime threads; small batches run faster on 1 (see docs/serving.md)
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies get 413
    grpc_port: int | None = None  # also serve the Open Inference Protocol over gRPC on this port (Triton uses 8001)

    def __post_init__(self) -> None:
        if self.batch_window_ms < 0 or self.max_batch_size < 1 or self.threads < 1:
            raise ConfigError("batch_window_ms must be >= 0, max_batch_size and threads >= 1")
        if self.grpc_port is not None and not (0 < self.grpc_port < 65536 and self.grpc_port != self.port):
            raise ConfigError(f"grpc_port {self.grpc_port} must be a TCP port (1-65535) other than port {self.port}")
