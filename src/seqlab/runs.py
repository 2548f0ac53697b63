"""The run directory: everything needed to reload a trained model, written all at once.

    config.json        model name + config (its architecture named), encoder settings, training settings, labels
    tokenizer.json     the tokenizer and vocabulary used in training (a standard Hugging Face tokenizer.json)
    encoder.json       seqlab's encoder settings (maxlen, truncation side...), naming tokenizer.json
    model.safetensors  weights
    history.json       per-epoch loss/accuracy
    metrics.json       test metrics
    README.md          the model card (seqlab/hub.py): the folder is a Hugging Face Hub model repository
    steps.csv          per-batch and per-epoch training logs (training/logs.py)
    epochs.csv

Runs written before tokenizer.json hold the tokenizer inside encoder.json, and still load.

A run directory is complete or absent: it is written into a temporary sibling and renamed.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
from safetensors import SafetensorError

from seqlab import __version__
from seqlab.errors import RunError
from seqlab.files import atomic_directory, file_sha256, write_json
from seqlab.hub import CARD_FILE, model_card, resolve_run
from seqlab.jsonfile import check, label_list, read_json, read_text, string_map
from seqlab.models import SequenceClassifier, build_model, saved_model_config
from seqlab.models.quantize import INT8, dequantize_state, quantize_state
from seqlab.text.encoder import TextEncoder

RUN_FORMAT = 1
REQUIRED = ("config.json", "encoder.json", "model.safetensors")
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
CHECKED = ("encoder.json", "tokenizer.json", "model.safetensors")  # sha256 kept in config.json, checked on load


@dataclass
class Run:
    directory: Path
    model: SequenceClassifier
    encoder: TextEncoder
    config: dict[str, Any]
    history: dict[str, list[float]]
    metrics: dict[str, Any]

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.config["label_names"])


def save_run(
    directory: Path,
    model: SequenceClassifier,
    encoder: TextEncoder,
    label_names: tuple[str, ...],
    training: dict[str, Any],
    history: dict[str, list[float]],
    metrics: dict[str, Any],
    data: dict[str, Any] | None = None,
    extra_weights: dict[str, dict[str, Any]] | None = None,
    extra_files: dict[str, Path] | None = None,
    weights: dict[str, Any] | None = None,
) -> Path:
    """Write a complete run directory; an existing one at `directory` is replaced whole.

    `extra_weights` maps file names (e.g. best.safetensors) to further state dicts to save;
    `extra_files` maps file names (the training logs, steps.csv and epochs.csv) to files to copy in.
    `weights` replaces the model's state dict in model.safetensors (models/quantize.py's int8 tables)."""
    directory = Path(directory)
    with atomic_directory(directory) as staging:
        config = {
            "format": RUN_FORMAT,
            "seqlab_version": __version__,
            "architectures": [type(model).__name__],  # as a Hub config names its model class
            "model": {"name": model.name, "config": asdict(model.config)},
            "encoder": asdict(encoder.config),
            "training": training,
            "label_names": list(label_names),
            "data": data or {},
        }
        encoder.save(staging)
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in (weights or model.state_dict()).items()}
        safetensors.torch.save_file(state, staging / "model.safetensors", metadata={"seqlab_version": __version__})
        for file_name, weights in (extra_weights or {}).items():
            weights = {name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}
            safetensors.torch.save_file(weights, staging / file_name, metadata={"seqlab_version": __version__})
        config["checksums"] = {name: file_sha256(staging / name) for name in CHECKED}
        write_json(staging / "config.json", config)
        write_json(staging / "history.json", history)
        write_json(staging / "metrics.json", metrics)
        (staging / CARD_FILE).write_text(model_card(config, metrics))
        for file_name, source in (extra_files or {}).items():
            shutil.copyfile(source, staging / file_name)
    return directory


def load_run(directory: str | Path) -> Run:
    """Reload a run directory (or a Hub snapshot of one, seqlab/hub.py), with a clear error for anything
    missing, foreign or damaged."""
    directory = resolve_run(directory)
    if directory.is_file() and directory.suffix in PICKLE_SUFFIXES:
        raise RunError(
            f"{directory} looks like a pickled PyTorch file. seqlab never unpickles files (unpickling runs "
            "arbitrary code); it reads run directories with weights in model.safetensors."
        )
    if not directory.is_dir():
        raise RunError(f"no run directory at {directory}; train one with `seqlab train MODEL --out {directory}`")
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        raise RunError(f"run directory {directory} is incomplete: missing {', '.join(missing)}")
    config = read_json(directory / "config.json")
    if config.get("format") != RUN_FORMAT:
        raise RunError(
            f"run directory {directory} has format {config.get('format')!r} (seqlab "
            f"{config.get('seqlab_version', 'unknown')}); this seqlab {__version__} reads format {RUN_FORMAT}. "
            "Retrain it with this version."
        )
    missing_keys = [key for key in ("model", "encoder", "label_names") if key not in config]
    if missing_keys:
        raise RunError(f"{directory / 'config.json'} lacks {', '.join(missing_keys)}")
    check(config, directory / "config.json", {"model": dict, "encoder": dict, "label_names": label_list,
                                              "checksums": string_map, "training": dict, "data": dict})
    try:
        encoder = TextEncoder.from_json(read_text(directory / "encoder.json"), directory)
        model = build_model(config["model"]["name"], saved_model_config(config["model"]["name"], config["model"]["config"]))
    except (ValueError, KeyError, TypeError, Exception) as error:
        if isinstance(error, RunError):
            raise
        raise RunError(f"cannot rebuild the model or encoder of {directory}: {error}") from None
    try:
        state = dequantize_state(safetensors.torch.load_file(directory / "model.safetensors"))
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as error:
        raise RunError(f"{directory / 'model.safetensors'} is damaged or does not fit the model: {error}") from None
    refuse_non_finite(state, directory / "model.safetensors")
    for name, expected in config.get("checksums", {}).items():  # runs written before checksums have none
        if name in CHECKED and file_sha256(directory / name) != expected:
            raise RunError(f"{directory / name} does not match the sha256 recorded in config.json when the run was "
                           "saved: it was changed or damaged since. Restore it from a copy, or retrain.")
    model.eval()
    return Run(
        directory=directory,
        model=model,
        encoder=encoder,
        config=config,
        history=_optional_json(directory / "history.json"),
        metrics=_optional_json(directory / "metrics.json"),
    )


def quantize_run(run_directory: str | Path, out: str | Path | None = None) -> Path:
    """Write a copy of the run at `run_directory` with int8 tables (models/quantize.py) to `out` (default RUN-int8)."""
    run = load_run(run_directory)
    with safetensors.safe_open(str(run.directory / "model.safetensors"), framework="pt") as handle:
        if any(name.endswith(INT8) for name in handle.keys()):
            raise RunError(f"{run.directory} is quantized already; quantize the run it came from")
    out = Path(out) if out is not None else run.directory.with_name(run.directory.name + "-int8")
    if out.resolve() == run.directory.resolve():
        raise RunError(f"--out {out} is the run itself; give another directory for the quantized copy")
    data = {**run.config.get("data", {}), "quantized_from": str(run.directory.resolve()), "quantized": "int8"}
    return save_run(out, run.model, run.encoder, run.label_names, training=run.config.get("training", {}),
                    history=run.history, metrics=run.metrics, data=data, weights=quantize_state(run.model.state_dict()))


def refuse_non_finite(state: dict[str, Any], path: Path) -> None:
    """Weights holding NaN or infinity give no answer worth having: refuse them, naming the tensor."""
    import torch

    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RunError(f"{path} holds weights that are not finite numbers (NaN or infinity in {name!r}): the "
                           "training that wrote it diverged. Retrain it, e.g. with a lower --learning-rate or "
                           "--clip-norm 1")


def _optional_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return read_json(path)
