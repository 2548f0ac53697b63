"""`seqlab serve` and `seqlab export`: saved runs over HTTP, and as ONNX for ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqlab.cli.options import Onnx, config_options, takes_options
from seqlab.cli.output import console
from seqlab.errors import ConfigError
from seqlab.extras import require
from seqlab.serve.config import ServeConfig


@takes_options(config_options(ServeConfig), "config")
def serve(
    runs: Annotated[list[str], typer.Argument(help="Run directories to serve, as PATH (named after its folder) or NAME=PATH.")],
    onnx: Onnx = False,
    *,
    config: ServeConfig,  # every ServeConfig field is an option (serve/config.py)
) -> None:
    """Serve run directories over HTTP: /v1/predict, /v1/explain, the Open Inference Protocol (/v2), a page at /."""
    require("serve")
    if config.grpc_port is not None:
        require("grpc")
    if onnx:
        require("export", "seqlab serve --onnx")
    from seqlab.serve.app import load_predictors, run_server

    config.api_key()  # an unreadable key file stops here, before the models load
    predictors = load_predictors(runs, backend="onnx" if onnx else "pytorch", threads=config.threads)
    address = config.host if ':' not in config.host else f'[{config.host}]'
    where = f"http://{address}:{config.port}"
    grpc = f", gRPC on {address}:{config.grpc_port}" if config.grpc_port is not None else ""
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
    require("export")
    from seqlab.export import TOLERANCE, export_onnx

    result = export_onnx(run, format=format)
    outputs = "probabilities, logits and attention" if result.attention else "probabilities and logits"
    console.print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, {result.exporter} exporter, "
                  f"outputs {outputs}); largest probability difference from PyTorch "
                  f"{result.max_difference:.1e} (limit {TOLERANCE:.0e})")
    console.print(f"use it with `seqlab predict {run} --onnx ...` or `seqlab serve {run} --onnx`, or without "
                  "seqlab with its tokenizer.json (docs/serving.md)")
