"""`seqlab serve` and `seqlab export`: saved runs over HTTP, and as ONNX for ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqlab.cli.options import Onnx, default
from seqlab.cli.output import console
from seqlab.errors import ConfigError
from seqlab.serve.config import ServeConfig


def serve(
    runs: Annotated[list[str], typer.Argument(help="Run directories to serve, as PATH (named after its folder) or NAME=PATH.")],
    host: Annotated[str, typer.Option(help="Address to bind; the default accepts only this machine.")] = default(ServeConfig, "host"),
    port: Annotated[int, typer.Option(help="TCP port.")] = default(ServeConfig, "port"),
    onnx: Onnx = False,
    batching: Annotated[bool, typer.Option(help="Merge concurrent requests into one model call.")] = default(ServeConfig, "batching"),
    batch_window_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests after its first.")] = default(ServeConfig, "batch_window_ms"),
    max_batch_size: Annotated[int, typer.Option(help="Texts after which a batch stops collecting.")] = default(ServeConfig, "max_batch_size"),
    threads: Annotated[int, typer.Option(help="Threads for PyTorch / ONNX Runtime.")] = default(ServeConfig, "threads"),
    max_body_bytes: Annotated[int, typer.Option(help="Larger request bodies get 413.")] = default(ServeConfig, "max_body_bytes"),
    max_queued_texts: Annotated[int, typer.Option(help="Texts waiting for a model beyond which requests get 503 with Retry-After.")] = default(ServeConfig, "max_queued_texts"),
    max_queued_explanations: Annotated[int, typer.Option(help="Explanations waiting or running beyond which requests get 503.")] = default(ServeConfig, "max_queued_explanations"),
    retry_after_s: Annotated[int, typer.Option(help="The Retry-After of a 503 under load, in seconds.")] = default(ServeConfig, "retry_after_s"),
    max_connections: Annotated[int, typer.Option(help="Open connections; more are answered 503 and closed.")] = default(ServeConfig, "max_connections"),
    keep_alive_timeout_s: Annotated[float, typer.Option(help="Idle connections are closed after this.")] = default(ServeConfig, "keep_alive_timeout_s"),
    max_header_bytes: Annotated[int, typer.Option(help="Larger request lines and headers get 431.")] = default(ServeConfig, "max_header_bytes"),
    header_timeout_s: Annotated[float, typer.Option(help="Request line and headers slower than this get 408.")] = default(ServeConfig, "header_timeout_s"),
    body_timeout_s: Annotated[float, typer.Option(help="Request bodies slower than this get 408.")] = default(ServeConfig, "body_timeout_s"),
    backlog: Annotated[int, typer.Option(help="Connections the system queues before the server accepts them.")] = default(ServeConfig, "backlog"),
    shutdown_timeout_s: Annotated[float, typer.Option(help="On Ctrl-C, requests in flight get this long to finish.")] = default(ServeConfig, "shutdown_timeout_s"),
    grpc_port: Annotated[Optional[int], typer.Option(help="Also serve the Open Inference Protocol over gRPC on this port (Triton uses 8001).")] = default(ServeConfig, "grpc_port"),
    api_key_file: Annotated[Optional[str], typer.Option(help="File holding the API key clients must send (else $SEQLAB_API_KEY; none: no key).")] = default(ServeConfig, "api_key_file"),
) -> None:
    """Serve run directories over HTTP: /v1/predict, /v1/explain, the Open Inference Protocol (/v2), a page at /."""
    from seqlab.serve.app import load_predictors, run_server

    config = ServeConfig(host=host, port=port, batching=batching, batch_window_ms=batch_window_ms,
                         max_batch_size=max_batch_size, threads=threads, max_body_bytes=max_body_bytes,
                         max_queued_texts=max_queued_texts, max_queued_explanations=max_queued_explanations,
                         retry_after_s=retry_after_s, max_connections=max_connections,
                         keep_alive_timeout_s=keep_alive_timeout_s, max_header_bytes=max_header_bytes,
                         header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s, backlog=backlog,
                         shutdown_timeout_s=shutdown_timeout_s, api_key_file=api_key_file,
                         grpc_port=grpc_port)
    config.api_key()  # an unreadable key file stops here, before the models load
    predictors = load_predictors(runs, backend="onnx" if onnx else "pytorch", threads=threads)
    address = host if ':' not in host else f'[{host}]'
    where = f"http://{address}:{port}"
    grpc = f", gRPC on {address}:{grpc_port}" if grpc_port is not None else ""
    console.print(f"serving {', '.join(predictors)} on {where}/ (API docs at {where}/docs){grpc}; Ctrl-C stops")
    run_server(predictors, config)


def export(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    format: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
    quantize: Annotated[bool, typer.Option("--quantize", help="Instead: write a copy of the run with int8 tables (models/quantize.py).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="With --quantize: the quantized run directory (default RUN-int8).")] = None,
) -> None:
    """Write RUN/model.onnx (dynamic batch and length), checked against PyTorch, for ONNX Runtime; or, with --quantize, an int8 run."""
    if quantize:
        from seqlab.runs import quantize_run

        written = quantize_run(run, out)
        size = (written / "model.safetensors").stat().st_size / 1e6
        console.print(f"wrote {written}/ (model.safetensors {size:.1f} MB, int8 tables); "
                      f"use it as any run: `seqlab evaluate {written}`, `seqlab serve {written}`")
        return
    if out is not None:
        raise ConfigError("--out names the quantized run; it goes with --quantize (ONNX is written into RUN)")
    from seqlab.export import TOLERANCE, export_onnx

    result = export_onnx(run, format=format)
    outputs = "logits and attention" if result.attention else "logits"
    console.print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, {result.exporter} exporter, "
                  f"outputs {outputs}); largest probability difference from PyTorch "
                  f"{result.max_difference:.1e} (limit {TOLERANCE:.0e})")
    console.print(f"use it with `seqlab predict {run} --onnx ...` or `seqlab serve {run} --onnx`")
