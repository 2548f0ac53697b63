"""The single path from raw text to answers; the CLI, Python API, server, page and ONNX export all use it.

A Predictor encodes texts with the encoder saved in the run, batches them by length and runs
them through a backend: the PyTorch model (default) or the run's exported ``model.onnx`` on
ONNX Runtime. Both see exactly the same ids, so they differ only by float rounding.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Protocol, Sequence

import numpy as np
import torch

from seqlab.errors import ConfigError, RunError, SeqlabError
from seqlab.evaluation.metrics import metrics_from_logits, probabilities
from seqlab.evaluation.predicting import batched_logits, cpu_threads
from seqlab.extras import require
from seqlab.files import file_sha256
from seqlab.models import kernels
from seqlab.runs import Run, load_run
from seqlab.text.cache import EncodedSplit
from seqlab.training.batches import Batch

BACKENDS = ("pytorch", "onnx")
ONNX_FILE = "model.onnx"  # written into the run directory by `seqlab export` (seqlab/export.py)
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class Scores(NamedTuple):
    logits: np.ndarray  # (batch, outputs) float32
    attention: np.ndarray | None = None  # (batch, time) float32, for attention models


class Backend(Protocol):
    """Runs one padded batch: ids (batch, time) int64 with padding after the tokens, lengths (batch,)."""

    name: str

    def __call__(self, ids: np.ndarray, lengths: np.ndarray) -> Scores: ...


class TorchBackend:
    """The PyTorch model. `precision="bfloat16"` runs a bfloat16 copy (AMX/AVX-512 on recent x86
    CPUs): about 2-3 times the throughput, probabilities within about 1e-3 of float32's."""

    name = "pytorch"

    def __init__(self, model: torch.nn.Module, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; choose {' or '.join(PRECISIONS)}")
        self.precision = precision
        self.model = model.eval() if precision == "float32" else copy.deepcopy(model).to(PRECISIONS[precision]).eval()

    @torch.inference_mode()
    def __call__(self, ids: np.ndarray, lengths: np.ndarray) -> Scores:
        device = next(self.model.parameters()).device
        output = self.model(torch.as_tensor(ids, device=device), torch.as_tensor(lengths, device=device))
        attention = None if output.attention is None else output.attention.float().cpu().numpy()
        return Scores(output.logits.float().cpu().numpy(), attention)


def weights_digest(directory: Path) -> str:
    """The SHA-256 of a run's weights, as recorded in the model.onnx exported from them."""
    return file_sha256(Path(directory) / "model.safetensors")


class OnnxBackend:
    """The run's model.onnx on ONNX Runtime (one intra-op thread by default: see docs/serving.md)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None):
        require("export", "predicting with ONNX Runtime (--onnx)")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("SEQLAB_ONNX_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            raise RunError(f"{path} is not a usable ONNX model ({str(error).splitlines()[0]}); "
                           "re-export it with `seqlab export RUN --format onnx`") from None
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    @classmethod
    def for_run(cls, run: Run, threads: int | None = None) -> OnnxBackend:
        path = run.directory / ONNX_FILE
        if not path.is_file():
            raise RunError(f"{run.directory} has no {ONNX_FILE}; write it with "
                           f"`seqlab export {run.directory} --format onnx`")
        backend = cls(path, threads)
        recorded = backend.metadata.get("weights_sha256")
        if recorded != weights_digest(run.directory):
            raise RunError(f"{path} was exported from other weights than {run.directory / 'model.safetensors'}; "
                           f"re-export it with `seqlab export {run.directory} --format onnx`")
        return backend

    def __call__(self, ids: np.ndarray, lengths: np.ndarray) -> Scores:
        feeds = {"ids": np.ascontiguousarray(ids, dtype=np.int64), "lengths": np.ascontiguousarray(lengths, dtype=np.int64)}
        results = self.session.run(None, feeds)
        named = dict(zip(self.outputs, results))
        return Scores(named["logits"].astype(np.float32, copy=False), named.get("attention"))


@dataclass(frozen=True)
class Prediction:
    label: str  # the most probable class's name
    probability: float  # its probability
    probabilities: dict[str, float]  # every class's probability
    tokens: int  # ids the model read (after cutting to maxlen)
    truncated: bool  # whether the text was longer than maxlen and got cut
    top: tuple[tuple[str, float], ...] | None = None  # with top_k/threshold: the classes kept, most probable first

    def to_dict(self) -> dict:
        kept = {} if self.top is None else {"top": [{"label": label, "probability": p} for label, p in self.top]}
        return {"label": self.label, "probability": self.probability, "probabilities": self.probabilities,
                "tokens": self.tokens, "truncated": self.truncated, **kept}


def check_top(classes: tuple[str, ...], top_k: int | None, threshold: float | None) -> None:
    """top_k and threshold choose among many classes; a binary run's answer already names both."""
    if top_k is None and threshold is None:
        return
    option = "top_k" if top_k is not None else "threshold"
    if len(classes) <= 2:
        raise ConfigError(f"{option} picks among the classes of a multi-class run; this run has {len(classes)} "
                          f"({', '.join(classes)}), whose answer already gives each one's probability")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be at least 1; got {top_k}")
    if threshold is not None and not 0 <= threshold <= 1:
        raise ConfigError(f"threshold is a probability in [0, 1]; got {threshold}")


def top_classes(classes: tuple[str, ...], probabilities: np.ndarray, top_k: int | None,
                threshold: float | None) -> tuple[tuple[str, float], ...]:
    """The `top_k` most probable classes (all, if None) of probability `threshold` or more, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[: top_k or len(classes)]
    return tuple((classes[i], float(probabilities[i])) for i in order
                 if threshold is None or probabilities[i] >= threshold)


class Predictor:
    """Text in, labels and probabilities out, with the encoder the model was trained with."""

    def __init__(self, run: Run, batch_size: int = 512, backend: Backend | None = None):
        self.run = run
        self.model = kernels.fold(run.model.eval())  # its weights never change: tables made once (models/kernels.py)
        self.encoder = run.encoder
        self.label_names = run.label_names
        self.batch_size = batch_size
        self.backend = backend or TorchBackend(self.model)

    @property
    def name(self) -> str:
        return self.run.directory.name

    def encode(self, texts: Iterable[str]) -> EncodedSplit:
        texts = list(texts)
        bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
        if bad:
            raise SeqlabError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
        return EncodedSplit(self.encoder.encode(texts), np.zeros(len(texts), dtype=np.int64))

    def logits(self, encoded: EncodedSplit) -> np.ndarray:
        """(texts, outputs) logits in the texts' order, through the one batched prediction loop
        (evaluation/predicting.py); on a CPU, a PyTorch model's batches are split over its cores."""
        threads = cpu_threads(self.model) if isinstance(self.backend, TorchBackend) else 1

        def forward(batch: Batch) -> torch.Tensor:
            return torch.from_numpy(self.backend(batch.ids.numpy(), batch.lengths.numpy()).logits)

        return batched_logits(forward, encoded, self.batch_size, threads).numpy()

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """(texts, classes) probabilities from logits, with the arithmetic used in training."""
        return probabilities(torch.from_numpy(np.ascontiguousarray(logits))).numpy()

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """(texts, classes) probabilities."""
        encoded = self.encode(texts)
        if len(encoded) == 0:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return self.probabilities(self.logits(encoded))

    def predict(self, texts: str | Iterable[str], top_k: int | None = None,
                threshold: float | None = None) -> list[Prediction]:
        """One Prediction per text. On a multi-class run, `top_k` (the K most probable classes) and
        `threshold` (those of that probability or more) fill each Prediction's `top`, as fastText's
        `predict TEXT K THRESHOLD` does."""
        check_top(self.label_names, top_k, threshold)
        if isinstance(texts, str):
            texts = [texts]
        encoded = self.encode(texts)
        if len(encoded) == 0:
            return []
        probs = self.probabilities(self.logits(encoded))
        lengths, truncated = encoded.lengths, encoded.encoded.truncated
        results = []
        for row, p in enumerate(probs):
            best = int(p.argmax())
            results.append(Prediction(
                label=self.label_names[best],
                probability=float(p[best]),
                probabilities={name: float(value) for name, value in zip(self.label_names, p)},
                tokens=int(lengths[row]),
                truncated=bool(truncated[row]),
                top=None if top_k is None and threshold is None else top_classes(self.label_names, p, top_k, threshold),
            ))
        return results

    def evaluate(self, texts: Iterable[str], labels: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Accuracy, loss, F1, ROC-AUC and recall per class on labelled texts (evaluation/metrics.py)."""
        logits = torch.from_numpy(self.logits(self.encode(texts)))
        return metrics_from_logits(logits, torch.as_tensor(np.asarray(labels, dtype=np.int64)), self.label_names)


def load(run_directory: str | Path, backend: str = "pytorch", threads: int | None = None,
         precision: str = "float32") -> Predictor:
    """A predictor for a run directory written by `seqlab train` or `seqlab compare`, a Hub snapshot
    of one, or a Hub repo id ("org/name") in the local Hugging Face cache (seqlab/hub.py).

    backend: "pytorch", or "onnx" for the run's model.onnx (written by `seqlab export`) on ONNX Runtime,
    with `threads` intra-op threads (default 1). precision: "float32" or "bfloat16" (PyTorch backend).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    run = load_run(run_directory)
    if backend == "onnx":
        return Predictor(run, backend=OnnxBackend.for_run(run, threads))
    return Predictor(run, backend=TorchBackend(run.model, precision))


__all__ = ["BACKENDS", "Backend", "ONNX_FILE", "OnnxBackend", "Prediction", "Predictor", "Scores", "TorchBackend",
           "load", "weights_digest"]
