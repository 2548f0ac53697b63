"""Resuming `compare`: each model of a comparison checkpoints beside its run (OUT/NAME.checkpoint/),
so a rerun with `resume=True` keeps the models already finished (their run directories, not
retrained) and continues the one in progress from its checkpoint.

What identifies a model of a comparison (its "recipe": model, options, training and encoder
settings, the data's fingerprint) is kept in its checkpoints and in its run's config.json; a
resume refuses anything recorded with another recipe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.errors import RunError
from seqlab.evaluation.metrics import roc_points
from seqlab.evaluation.predicting import predict_logits
from seqlab.jsonfile import dumps
from seqlab.models import SequenceClassifier, count_parameters
from seqlab.runs import load_run
from seqlab.text.cache import EncodedCorpus
from seqlab.training.checkpoint import LATEST, Checkpoint, Checkpointer, checkpoint_directory, load_checkpoint
from seqlab.training.config import TrainConfig


def corpus_digest(corpus: EncodedCorpus) -> str:
    """The token ids and labels of both splits, hashed: what a resume checks it trains on."""
    digest = hashlib.sha256(json.dumps([corpus.name, list(corpus.label_names)]).encode())
    for split in (corpus.train, corpus.test):
        for array in (split.encoded.ids, split.encoded.offsets, split.labels):
            digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def model_recipe(name: str, corpus: EncodedCorpus, training: TrainConfig, model_options: dict[str, Any],
                 fingerprint: str, embeddings: str | None) -> dict[str, Any]:
    """What makes model `name` of a comparison the same model on a rerun, as JSON reads it back."""
    return json.loads(dumps({"compare": name, "model_options": model_options, "training": asdict(training),
                             "encoder": asdict(corpus.encoder.config), "fingerprint": fingerprint,
                             "embeddings": embeddings}))


def refuse_unresumed(out: Path, names: list[str]) -> None:
    """Without `resume`, a comparison never overwrites checkpoints of an interrupted one."""
    held = [name for name in names if (checkpoint_directory(out / name) / LATEST).exists()]
    if held:
        raise RunError(f"{out} holds checkpoints of an interrupted comparison ({', '.join(held)}); continue it by "
                       f"rerunning the same command with --resume, or delete {out} to start again")


def resume_point(run_directory: Path, recipe: dict[str, Any]) -> Checkpoint | None:
    """The checkpoint of this model to continue from, if there is one (checked to be of `recipe`)."""
    if not (checkpoint_directory(run_directory) / LATEST).exists():
        return None
    checkpoint = load_checkpoint(run_directory)
    if checkpoint.recipe != recipe:
        raise _other_recipe(checkpoint.directory)
    return checkpoint


def checkpointer(run_directory: Path, recipe: dict[str, Any], every_steps: int) -> Checkpointer:
    return Checkpointer(checkpoint_directory(run_directory), recipe, every_steps=every_steps)


def finished(run_directory: Path, recipe: dict[str, Any], corpus: EncodedCorpus,
             device: torch.device) -> tuple[SequenceClassifier, dict[str, Any]] | None:
    """The model of a run this comparison already finished, with the fields of its ModelResult
    (None if there is none)."""
    if not (run_directory / "config.json").is_file() or (checkpoint_directory(run_directory) / LATEST).exists():
        return None
    run = load_run(run_directory)
    if run.config.get("data", {}).get("compare") != recipe:
        raise _other_recipe(run_directory)
    model = run.model.to(device)
    roc = None
    if len(corpus.test):
        roc = roc_points(predict_logits(model, corpus.test), torch.from_numpy(corpus.test.labels))
    metrics = run.metrics
    return model, {"name": recipe["compare"], "run_directory": run_directory, "parameters": count_parameters(model),
                   "history": run.history, "test": metrics.get("test", {}),
                   "train_seconds": metrics.get("train_seconds", 0.0), "config": run.config["model"]["config"],
                   "roc": roc, "best_epoch": metrics.get("best_epoch"), "embeddings": recipe["embeddings"]}


def _other_recipe(path: Path) -> RunError:
    return RunError(f"{path} was written by a comparison with other models, settings or data, so --resume cannot "
                    "keep it; rerun with the settings it was made with, or delete it to train it afresh")
