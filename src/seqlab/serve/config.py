"""Server options, defined once (the CLI surfaces these defaults); no web imports here."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import ConfigError

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB per request body; larger gets 413
MAX_TEXTS = 256  # texts per request; more is a 422 telling the client to split the batch
API_KEY_VARIABLE = "SEQLAB_API_KEY"  # the environment variable that may hold the API key


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # address to bind: the default accepts only this machine; 0.0.0.0 accepts others
    port: int = 8000  # TCP port
    batching: bool = True  # merge concurrent requests into one model call
    batch_window_ms: float = 2.0  # how long a batch waits for more requests after the first one
    max_batch_size: int = 64  # texts after which a batch stops collecting
    threads: int = 1  # PyTorch / ONNX Runtime threads; small batches run faster on 1 (see docs/serving.md)
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies get 413
    # Load shedding: beyond these, a request gets 503 with Retry-After at once instead of queueing.
    max_queue_wait_s: float = 0.5  # longest expected wait (texts ahead / the rate they drain at) a request is queued for; else 503
    max_queued_texts: int = 4096  # texts waiting for or in a model beyond which requests get 503; at least the 256 of one request
    max_queued_explanations: int = 4  # explanations waiting or running (on their own thread) beyond which requests get 503
    retry_after_s: int = 1  # the Retry-After a shed request is given
    # Connections: each open one holds a file descriptor, so they are capped and timed out.
    max_connections: int = 1024  # open connections; more are answered 503 and closed straight away
    keep_alive_timeout_s: float = 5.0  # an idle connection (new, or between requests) is closed after this
    max_header_bytes: int = 64 * 1024  # a request line and headers larger than this get 431
    header_timeout_s: float = 10.0  # the request line and headers must arrive within this of their first byte
    body_timeout_s: float = 30.0  # the whole body must arrive within this of the headers; else 408
    backlog: int = 2048  # connections the operating system queues before the server accepts them
    shutdown_timeout_s: float = 10.0  # on Ctrl-C/SIGTERM, requests in flight get this long to finish
    # Authentication: with a key, every request but the health checks, the page and the docs needs
    # `Authorization: Bearer KEY` or `X-API-Key: KEY`.
    api_key_file: str | None = None  # file holding the API key clients must send (else $SEQLAB_API_KEY; none: no key)
    grpc_port: int | None = None  # also serve the Open Inference Protocol over gRPC on this port (Triton uses 8001)

    def __post_init__(self) -> None:
        if self.batch_window_ms < 0 or self.max_batch_size < 1 or self.threads < 1:
            raise ConfigError("batch_window_ms must be >= 0, max_batch_size and threads >= 1")
        if self.max_queued_texts < MAX_TEXTS:
            raise ConfigError(f"max_queued_texts must be at least {MAX_TEXTS} (the texts one request may send), "
                              f"not {self.max_queued_texts}")
        positive = ("max_queue_wait_s", "max_body_bytes", "max_queued_explanations", "retry_after_s", "max_connections", "max_header_bytes",
                    "keep_alive_timeout_s", "header_timeout_s", "body_timeout_s", "backlog", "shutdown_timeout_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be more than 0, not {getattr(self, name)}")
        if self.grpc_port is not None and not (0 < self.grpc_port < 65536 and self.grpc_port != self.port):
            raise ConfigError(f"grpc_port {self.grpc_port} must be a TCP port (1-65535) other than port {self.port}")

    def api_key(self) -> str | None:
        """The API key from `api_key_file` or $SEQLAB_API_KEY; None when neither is set."""
        if self.api_key_file is not None:
            try:
                key = Path(self.api_key_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as problem:
                raise ConfigError(f"cannot read the API key file {self.api_key_file}: {problem}") from None
            if not key:
                raise ConfigError(f"the API key file {self.api_key_file} is empty; write the key in it")
            return key
        key = os.environ.get(API_KEY_VARIABLE, "").strip()
        return key or None

    def exposure_warning(self) -> str | None:
        """A warning when the server accepts other machines without an API key, else None."""
        if self.api_key() is not None or is_loopback(self.host):
            return None
        return (f"serving on {self.host} without an API key: anyone who can reach this machine can use the models; "
                f"set {API_KEY_VARIABLE} or --api-key-file")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
