"""The lecture's flow as functions: prepare data, train models, compare them.

Each step returns plain data; the CLI and docs/lecture.md render it.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from seqlab.data import imdb
from seqlab.evaluation.figures import history_grid
from seqlab.evaluation.metrics import probabilities
from seqlab.models import SequenceClassifier, build_model, count_parameters, model_config
from seqlab.files import write_json
from seqlab.runs import save_run
from seqlab.text.cache import EncodedCorpus, load_or_encode
from seqlab.text.encoder import EncoderConfig
from seqlab.training import distributed
from seqlab.training.fit import Callback, Reporter, TrainConfig, default_device, predict_logits, split_validation

FIGURE_NAME = "sequence_models_history.png"


def prepare_imdb(
    archive: str | Path | None = None,
    encoder: EncoderConfig | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    cache: bool = True,
) -> EncodedCorpus:
    """IMDb read, tokenized and encoded; cached so a second call skips all of it.

    `train_size`/`test_size` draw a class-balanced random subset (for quick runs).
    """
    encoder = encoder or EncoderConfig()
    path = imdb.locate_archive(archive)
    fingerprint = f"imdb:{imdb.file_sha256(path)}"
    subset = train_size is not None or test_size is not None
    if subset:
        fingerprint += f":subset:{train_size}:{test_size}:0"

    def read():
        corpus = imdb.read_archive(path)
        return corpus.subset(train_size, test_size, seed=0) if subset else corpus

    corpus, _ = load_or_encode(fingerprint, read, encoder, imdb.cache_dir() if cache else None)
    return corpus


@dataclass
class ModelResult:
    name: str
    run_directory: Path | None
    parameters: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    error: str | None = None  # set when this model failed; the others still ran

    def to_dict(self) -> dict:
        data = asdict(self)
        data["run_directory"] = str(self.run_directory) if self.run_directory else None
        return data


def train_model(
    name: str,
    corpus: EncodedCorpus,
    training: TrainConfig | None = None,
    out: str | Path | None = None,
    reporter: Reporter | None = None,
    device: torch.device | None = None,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
    checkpoint: str | Path | None = None,
    checkpoint_steps: int | None = None,
    **model_options,
) -> tuple[SequenceClassifier, ModelResult]:
    """Build `name`, fit it on the training split (less the validation share), test it, and
    save a run directory at `out` if given.

    Under torchrun each process trains on its share of every batch (training/distributed.py)
    and only process 0 writes. With `checkpoint`, training state is saved there every
    `checkpoint_steps` batches and every epoch, and a run finding one there resumes from it.
    """
    from seqlab.training.snapshot import Snapshots, has_snapshot, restore_snapshot

    training = training or TrainConfig()
    torch.manual_seed(training.seed)
    model = build_model(name, vocab_size=corpus.encoder.vocab_size, num_classes=len(corpus.label_names), **model_options)
    group = distributed.current()
    model.to(group.device if group else device or default_device())
    train_split, validation = split_validation(corpus.train, training.validation_split, training.seed, copy=False)
    if checkpoint is not None:
        callbacks = [*callbacks, Snapshots(Path(checkpoint), checkpoint_steps)]
    trainer = distributed.make_trainer(model, train_split, validation, training, reporter, callbacks)
    if checkpoint is not None and has_snapshot(Path(checkpoint)):
        restore_snapshot(trainer, Path(checkpoint))
    started = time.perf_counter()
    history = trainer.fit()
    train_seconds = time.perf_counter() - started
    test = distributed.evaluate_anywhere(model, corpus.test, training.eval_batch_size) if len(corpus.test) else {}
    history_dict = asdict(history)
    run_directory = None
    if out is not None and distributed.is_main():
        run_directory = save_run(
            Path(out), model, corpus.encoder, corpus.label_names, training=asdict(training),
            history=history_dict, metrics={"test": test, "train_seconds": train_seconds},
            data={"name": corpus.name, "train": len(train_split), "validation": len(validation or []),
                  "test": len(corpus.test)},
        )
    distributed.barrier()  # the run directory is complete before any process returns
    result = ModelResult(name, run_directory, count_parameters(model), history_dict, test, train_seconds)
    return model, result


@dataclass
class Sample:
    text: str  # decoded from the ids the models read
    true_label: str
    predictions: dict[str, tuple[str, float]]  # model -> (label, probability of that label)


def sample_predictions(
    models: dict[str, SequenceClassifier], corpus: EncodedCorpus, count: int = 5, seed: int = 42
) -> list[Sample]:
    """Predictions of every model on `count` random test reviews (seeded)."""
    indices = np.random.default_rng(seed).choice(len(corpus.test), size=min(count, len(corpus.test)), replace=False)
    chosen = corpus.test.take(indices)
    per_model = {name: probabilities(predict_logits(model, chosen)).numpy() for name, model in models.items()}
    samples = []
    for row in range(len(chosen)):
        samples.append(Sample(
            text=corpus.encoder.decode(chosen.encoded.sequence(row)),
            true_label=corpus.label_names[int(chosen.labels[row])],
            predictions={name: (corpus.label_names[int(p[row].argmax())], float(p[row].max())) for name, p in per_model.items()},
        ))
    return samples


@dataclass
class Comparison:
    results: list[ModelResult]
    samples: list[Sample]
    figure: Path | None
    directory: Path


def compare(
    names: list[str],
    corpus: EncodedCorpus,
    training: TrainConfig | None = None,
    out: str | Path = "runs",
    reporter_for: Callable[[str], Reporter] | None = None,
    on_result: Callable[[ModelResult], None] | None = None,
    **model_options,
) -> Comparison:
    """Train and test each named model on the same data; write runs, figure and results.

    A model that fails is recorded with its error; the others go on and are kept.
    """
    out = Path(out)
    for name in names:  # fail before any training on an unknown name or option
        model_config(name, **model_options)
    trained: dict[str, SequenceClassifier] = {}
    results: list[ModelResult] = []
    for name in names:
        try:
            model, result = train_model(
                name, corpus, training, out / name, reporter_for(name) if reporter_for else None, **model_options
            )
            trained[name] = model
        except Exception as error:  # keep the other models' results
            result = ModelResult(name, None, error=f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
        results.append(result)
        if on_result:
            on_result(result)
    figure = history_grid({r.name: r.history for r in results if r.error is None}, out / FIGURE_NAME) if trained else None
    samples = sample_predictions(trained, corpus, seed=(training or TrainConfig()).seed) if trained else []
    write_json(out / "results.json", {
        "models": [r.to_dict() for r in results],
        "samples": [asdict(s) for s in samples],
        "training": asdict(training or TrainConfig()),
        "encoder": asdict(corpus.encoder.config),
    })
    return Comparison(results, samples, figure, out)
