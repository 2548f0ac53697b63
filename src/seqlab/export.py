"""ONNX export of a run's model, usable without seqlab and by the Predictor's ONNX Runtime backend.

    seqlab export RUN --format onnx      # writes RUN/model.onnx beside RUN/tokenizer.json

The graph takes the Predictor's batches unchanged: ``ids`` (batch, time) int64 with padding
after the tokens and ``lengths`` (batch,) int64; both axes are dynamic. It returns
``probabilities`` (batch, classes), ``logits`` (and ``attention`` for attention models). The
metadata says what a caller needs to make the ids from tokenizer.json's: label names, maxlen,
truncation side, start token, padding side and id, and the activation (docs/serving.md has the
recipe, which tests/test_export_portable.py runs where seqlab cannot be imported). The file
records the SHA-256 of the weights it came from; a run whose weights changed since refuses a
stale model.onnx.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlab import __version__
from seqlab.errors import ConfigError, SeqlabError
from seqlab.evaluation.metrics import probabilities
from seqlab.extras import require
from seqlab.files import atomic_path
from seqlab.predict import ONNX_FILE, OnnxBackend, weights_digest
from seqlab.runs import Run, load_run
from seqlab.text.encoder import PAD, START, TOKENIZER_FILE

FORMATS = ("onnx",)
OPSET = 18  # ONNX operator set written; ONNX Runtime 1.18+ runs it
TOLERANCE = 1e-4  # largest probability difference from PyTorch an export may show


class ExportError(SeqlabError):
    """The model could not be exported, or the export does not match PyTorch."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    exporter: str  # "torchscript" or "dynamo": which torch.onnx exporter wrote the graph
    max_difference: float  # largest probability difference from PyTorch on the check batches
    attention: bool  # whether the graph also returns attention weights


class _Graph(torch.nn.Module):
    """The model with plain tensor outputs, as an exporter wants them: probabilities, logits[, attention]."""

    def __init__(self, model: torch.nn.Module, attention: bool):
        super().__init__()
        self.model = model
        self.attention = attention

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        output = self.model(ids, lengths)
        scores = (probabilities(output.logits), output.logits)  # (batch, classes), (batch, outputs)
        return (*scores, output.attention) if self.attention else scores


def _example(vocab_size: int, batch: int, time: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, time + 1, (batch,), generator=generator)  # (batch,)
    lengths[0] = time
    ids = torch.randint(3, max(vocab_size, 4), (batch, time), generator=generator)  # (batch, time)
    ids[torch.arange(time).unsqueeze(0) >= lengths.unsqueeze(1)] = 0  # padding after each text's tokens
    return ids, lengths


def _write_graph(graph: _Graph, example, path: Path, output_names: list[str]) -> str:
    """Try the TorchScript exporter (fast, emits ONNX's LSTM/GRU/RNN ops), then torch.export's."""
    dynamic_axes = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "probabilities": {0: "batch"},
                    "logits": {0: "batch"}}
    if "attention" in output_names:
        dynamic_axes["attention"] = {0: "batch", 1: "time"}
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(graph, example, str(path), input_names=["ids", "lengths"], output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
            return "torchscript"
        except Exception as error:  # noqa: BLE001 - fall back to the other exporter, report both if it fails too
            failures.append(f"TorchScript exporter: {error}")
        try:
            batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
            torch.onnx.export(graph, example, str(path), input_names=["ids", "lengths"], output_names=output_names,
                              dynamic_shapes={"ids": {0: batch, 1: time}, "lengths": {0: batch}},
                              opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
            return "dynamo"
        except Exception as error:  # noqa: BLE001
            failures.append(f"torch.export exporter: {error}")
    raise ExportError("cannot export this model to ONNX:\n  " + "\n  ".join(f.splitlines()[0] for f in failures))


def metadata(run: Run, exporter: str, outputs: int) -> dict[str, str]:
    """The model.onnx metadata properties: what a caller without seqlab needs to feed and read the graph."""
    settings = run.encoder.config
    return {"seqlab_version": __version__, "model": run.config["model"]["name"],
            "label_names": json.dumps(list(run.label_names), ensure_ascii=False),  # JSON list, class order
            "maxlen": str(settings.maxlen),  # ids kept per text, start token included
            "truncation_side": settings.truncating,  # pre: keep the last maxlen ids; post: the first
            "start_token": str(START) if settings.start_token else "",  # id tokenizer.json puts first; "" none
            "padding_side": "post", "pad_id": str(PAD),  # the graph wants padding after each text's ids
            "activation": "sigmoid" if outputs == 1 else "softmax",  # probabilities from logits; 1 logit: P(class 1)
            "tokenizer": TOKENIZER_FILE, "weights_sha256": weights_digest(run.directory), "exporter": exporter}


def export_onnx(run_directory: str | Path, format: str = "onnx") -> ExportResult:
    """Write RUN/model.onnx (dynamic batch and length), checked against PyTorch before it is kept, and
    RUN/tokenizer.json if the run predates it."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    require("export")
    import onnx

    run = load_run(run_directory)
    model = run.model.eval()
    vocab_size = run.encoder.vocab_size
    example = _example(vocab_size, 2, 7, seed=0)
    with torch.no_grad():
        output = model(*example)
    attention, outputs = output.attention is not None, int(output.logits.shape[-1])
    output_names = ["probabilities", "logits", "attention"] if attention else ["probabilities", "logits"]
    path = run.directory / ONNX_FILE
    with atomic_path(path) as temporary:
        # eval(): the exporter puts the wrapper back in its own mode afterwards, and a wrapper left in
        # training mode would switch the model's dropout on for the check below.
        exporter = _write_graph(_Graph(model, attention).eval(), example, temporary, output_names)
        document = onnx.load(str(temporary))
        for key, value in metadata(run, exporter, outputs).items():
            entry = document.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(document, str(temporary))
        backend = OnnxBackend(temporary)
        difference = max(_difference(model, backend, vocab_size, batch, time, seed)
                         for seed, (batch, time) in enumerate([(1, run.encoder.config.maxlen), (64, 57), (3, 1)]))
        if difference > TOLERANCE:
            raise ExportError(f"the exported model differs from PyTorch by {difference:.2e} in probability "
                              f"(more than {TOLERANCE}); {ONNX_FILE} was not written")
    if not (run.directory / TOKENIZER_FILE).is_file():
        with atomic_path(run.directory / TOKENIZER_FILE) as temporary:
            temporary.write_text(run.encoder.tokenizer_json())
    return ExportResult(path, exporter, difference, attention)


def _difference(model, backend: OnnxBackend, vocab_size: int, batch: int, time: int, seed: int) -> float:
    """The largest difference from PyTorch's probabilities: of the graph's own, and of its logits'."""
    ids, lengths = _example(vocab_size, batch, time, seed)
    with torch.no_grad():
        expected = probabilities(model(ids, lengths).logits)  # (batch, classes)
    from_logits = probabilities(torch.from_numpy(backend(ids.numpy(), lengths.numpy()).logits))  # (batch, classes)
    graph = torch.from_numpy(backend.session.run(["probabilities"], {"ids": ids.numpy(), "lengths": lengths.numpy()})[0])
    return float(max((expected - from_logits).abs().max(), (expected - graph).abs().max()))


__all__ = ["ExportError", "ExportResult", "FORMATS", "ONNX_FILE", "TOLERANCE", "export_onnx"]
