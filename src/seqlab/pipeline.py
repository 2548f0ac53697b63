"""The lecture's flow as functions: prepare data, train models, compare them.

Each step returns plain data; the CLI and docs/lecture.md render it.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from seqlab import comparing
from seqlab.data import imdb
from seqlab.data.corpus import Corpus
from seqlab.data.sources import DataSource
from seqlab.text.summary import DataSummary
from seqlab.evaluation.baseline import BaselineResult, reference_baselines
from seqlab.evaluation.gradients import GradientProfile, gradient_figure, gradient_profile, supports
from seqlab.evaluation.report import write_report
from seqlab.evaluation.metrics import metrics_from_logits, probabilities, roc_points
from seqlab.evaluation.predicting import predict_logits
from seqlab.models import SequenceClassifier, build_model, count_parameters, model_config
from seqlab.errors import ConfigError, DataError
from seqlab.files import check_writable, write_json
from seqlab.jsonfile import read_json
from seqlab.runs import save_run
from seqlab.text.cache import EncodedCorpus, load_or_encode
from seqlab.text.encoder import EncoderConfig, TextEncoder
from seqlab.models.embeddings import EmbeddingMatrix, apply_embeddings
from seqlab.training import distributed
from seqlab.training.callbacks import BestCheckpoint, training_callbacks
from seqlab.training.checkpoint import Checkpoint, Checkpointer
from seqlab.training.fit import Callback, Reporter, TrainConfig, default_device, split_validation
from seqlab.training.logs import run_logs

FIGURE_NAME = "sequence_models_history.png"


@dataclass
class Prepared:
    corpus: EncodedCorpus
    summary: DataSummary  # classes, lengths, coverage, duplicates, train/test overlap
    fingerprint: str  # identifies the data and the encoder settings; a resume checks it
    from_cache: bool


def prepare(
    source: DataSource | str = "imdb",
    encoder: EncoderConfig | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    cache: bool = True,
    vocabulary: TextEncoder | None = None,
) -> Prepared:
    """The one door to data: any source (IMDb, a CSV/TSV/JSONL/Parquet/fastText file, a folder per
    class, a folder written by `seqlab data prepare`, or texts and labels in memory: lists, a
    DataFrame, a `datasets` Dataset/DatasetDict) read, checked, tokenized, encoded and summarised;
    cached by the source's fingerprint (file or in-memory content) and the encoder settings.

    `train_size`/`test_size` draw a class-balanced subset of each split (sources.load_corpus);
    `evaluate` draws the same test reviews for the same `test_size`. A prepared folder is opened
    memory-mapped with its own encoder: `encoder` (if given) must equal it. `vocabulary` (a pretrained
    run's encoder, for --init-from) replaces the vocabulary fitted on the training texts.
    """
    from seqlab.data.sources import fingerprint as source_fingerprint
    from seqlab.data.sources import load_corpus
    from seqlab.text.summary import TextFigures, summarize, text_figures
    from seqlab.text.cache import cache_key

    source = DataSource(data=source) if isinstance(source, str) else source
    fingerprint = source_fingerprint(source, train_size, test_size)
    if source.is_prepared and vocabulary is not None:
        raise ConfigError(f"{source.data} is a prepared corpus with its own vocabulary; --init-from reads texts "
                          "with the pretrained run's, so give the data it was prepared from")
    if source.is_prepared:
        from seqlab.text.prepared import open_source

        corpus, stored = open_source(source, encoder, train_size, test_size)
        return Prepared(corpus, summarize(corpus, TextFigures(**stored)),
                        f"{fingerprint}|{cache_key(fingerprint, corpus.encoder.config)}", True)
    encoder = encoder or EncoderConfig()
    if vocabulary is not None:
        fingerprint = f"{fingerprint}|vocabulary={vocabulary.fingerprint()}"
        encoder = replace(encoder, max_features=vocabulary.vocab_size)
    figures: list[TextFigures] = []

    def read():
        corpus = load_corpus(source, train_size, test_size)
        figures.append(text_figures(corpus))
        return corpus

    root = imdb.cache_dir() if cache else None
    corpus, hit = load_or_encode(fingerprint, read, encoder, root, vocabulary)
    figures_path = root / "summaries" / f"{cache_key(fingerprint, encoder)}.json" if root else None
    if hit and figures_path and figures_path.is_file():
        figures.append(TextFigures(**read_json(figures_path, error=DataError, fix=f"delete {figures_path}")))
    elif hit:  # a cache entry from before summaries were stored
        read()
    if figures_path and not figures_path.is_file():
        write_json(figures_path, asdict(figures[-1]))
    return Prepared(corpus, summarize(corpus, figures[-1]), f"{fingerprint}|{cache_key(fingerprint, encoder)}", hit)


def check_outputs(directory: str | Path, data: DataSource | None = None) -> None:
    """Fail fast, before any data is read: `directory` (where runs and their OUT.checkpoint/ folders
    go) and, unless `data` is a prepared folder, the cache of encoded data must take files."""
    check_writable(Path(directory), "the output folder", "choose another with --out")
    if data is None or not data.is_prepared:
        check_writable(imdb.cache_dir(), "the cache folder", f"set {imdb.CACHE_ENV} to a writable folder")


def evaluate_run(
    run: str | Path,
    source: DataSource | str = "imdb",
    test_size: int | None = None,
    precision: str = "float32",
) -> dict:
    """Test the saved run `run` on labelled texts with its own encoder: accuracy, loss and recall per class.

    IMDb's test reviews, else every text of the source (sources.load_evaluation_split); with
    `test_size`, the very test reviews that training with the same `test_size` held out."""
    from seqlab.data.sources import load_evaluation_split
    from seqlab.predict import load

    predictor = load(run, precision=precision)
    source = DataSource(data=source) if isinstance(source, str) else source
    split = load_evaluation_split(source, predictor.label_names, test_size)
    scores = predictor.evaluate(split.texts, split.labels)
    return {"run": str(run), "test_reviews": len(split.labels), "accuracy": scores["accuracy"], "loss": scores["loss"],
            "recall": scores["recall"]}


@dataclass
class ModelResult:
    name: str
    run_directory: Path | None
    parameters: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    error: str | None = None  # set when this model failed; the others still ran
    config: dict = field(default_factory=dict)  # the model's config dataclass, as saved in config.json
    roc: dict[str, list[float]] | None = None  # test ROC curve (binary tasks): fpr, tpr
    best_epoch: int | None = None  # epoch with the best validation figure (best.safetensors)
    embeddings: str | None = None  # pretrained vectors used, with their coverage

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
    checkpointing: Checkpointing | None = None,
    embeddings: EmbeddingMatrix | None = None,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
    init_from: str | Path | None = None,
    log: Callable[[str], None] = lambda message: None,
    **model_options,
) -> tuple[SequenceClassifier, ModelResult]:
    """Build `name`, fit it on the training split (less the validation share), test it, and
    save a run directory at `out` if given.

    With `checkpointing`, training checkpoints as it goes (training/checkpoint.py) and, if it
    holds a checkpoint, continues from it exactly. Under torchrun each process trains on its
    share of every batch (training/distributed.py) and only process 0 writes. `embeddings`
    (pretrained vectors in the encoder's id order) initialise the embedding layer;
    embedding_dim then follows them unless given. `init_from` (a `seqlab pretrain` run) initialises
    the embedding and recurrent layers (training/finetune.py; the model options must fit its body).
    `callbacks` (training/fit.py Callback) run first at every batch and epoch end; the run directory
    gets steps.csv and epochs.csv (training/logs.py), and `training.tensorboard` TensorBoard scalars.
    """
    training = training or TrainConfig()
    torch.manual_seed(training.seed)
    if embeddings is not None and model_options.get("embedding_dim") is None:
        model_options["embedding_dim"] = embeddings.dimension
    model = build_model(name, vocab_size=corpus.encoder.vocab_size, num_classes=len(corpus.label_names), **model_options)
    if embeddings is not None:
        apply_embeddings(model, embeddings)
    if init_from is not None:
        from seqlab.training.finetune import init_from_pretrained

        log(init_from_pretrained(model, init_from, corpus.encoder))
    group = distributed.current()
    model.to(group.device if group else device or default_device())
    train_split, validation = split_validation(corpus.train, training.validation_split, training.seed, copy=False)
    trainer = distributed.make_trainer(model, train_split, validation, training, reporter, list(callbacks))
    logs = run_logs(name, training, Path(out) if out is not None else None,
                    checkpointing.callback.directory if checkpointing else None)
    trainer.callbacks.extend(logs.callbacks)  # before the schedule, so a batch's row has the rate it trained with
    trainer.callbacks.extend(training_callbacks(trainer))
    if checkpointing:  # last, so a checkpoint sees the epoch's final state
        trainer.callbacks.append(checkpointing.callback)
        if checkpointing.resume_from:
            checkpointing.callback.restore(trainer, checkpointing.resume_from)
    started = time.perf_counter()
    try:
        history = trainer.fit()
    except BaseException:
        logs.finish()
        raise
    train_seconds = time.perf_counter() - started
    logits = predict_logits(model, corpus.test, training.eval_batch_size)
    labels = torch.from_numpy(corpus.test.labels)
    test = metrics_from_logits(logits, labels, corpus.label_names) if len(corpus.test) else {}
    best = next((c for c in trainer.callbacks if isinstance(c, BestCheckpoint) and c.state is not None), None)
    history_dict = asdict(history)
    run_directory = None
    if out is not None and distributed.is_main():
        run_directory = save_run(
            Path(out), model, corpus.encoder, corpus.label_names, training=asdict(training),
            history=history_dict, metrics={"test": test, "train_seconds": train_seconds,
                                           "best_epoch": best.best_epoch if best else None},
            data={"name": corpus.name, "train": len(train_split), "validation": len(validation or []),
                  "test": len(corpus.test), "embeddings": embeddings.describe() if embeddings else None,
                  **(checkpointing.data if checkpointing else {})},
            extra_weights={"best.safetensors": best.state} if best and best.state is not None else None,
            extra_files=logs.files,
        )
    logs.finish()
    if checkpointing:
        checkpointing.callback.finish()
    distributed.barrier()  # the run directory is complete before any process returns
    result = ModelResult(name, run_directory, count_parameters(model), history_dict, test, train_seconds,
                         config=asdict(model.config), roc=roc_points(logits, labels) if len(corpus.test) else None,
                         best_epoch=best.best_epoch if best else None,
                         embeddings=embeddings.describe() if embeddings else None)
    return model, result


@dataclass
class Checkpointing:
    """How `train_model` checkpoints: the callback that writes them, the checkpoint to resume
    from (None: start afresh) and what to record about the data in the run."""

    callback: Checkpointer
    resume_from: Checkpoint | None = None
    data: dict = field(default_factory=dict)


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
    report: Path | None = None  # report.html (with results.md, results.csv and the figures beside it)
    baselines: list[BaselineResult] = field(default_factory=list)  # TF-IDF + LR, NB-LR, NBSVM
    gradients: dict[str, GradientProfile] = field(default_factory=dict)


def gradient_profiles(trained: dict[str, SequenceClassifier], corpus: EncodedCorpus, steps: int = 100,
                      count: int = 32, seed: int = 42) -> dict[str, GradientProfile]:
    """dLoss/dh_t per step for each one-directional recurrent model, trained and freshly initialised."""
    profiles: dict[str, GradientProfile] = {}
    steps = min(steps, int(corpus.test.lengths.max()))
    for name, model in trained.items():
        if not supports(model):
            continue
        torch.manual_seed(seed)
        fresh = build_model(name, config=model.config).to(next(model.parameters()).device)
        profiles[f"{name} (trained)"] = gradient_profile(name, model, corpus.test, steps, count, seed)
        profiles[f"{name} (fresh)"] = gradient_profile(name, fresh, corpus.test, steps, count, seed)
    return profiles


def compare(
    names: list[str],
    corpus: EncodedCorpus,
    training: TrainConfig | None = None,
    out: str | Path = "runs",
    reporter_for: Callable[[str], Reporter] | None = None,
    on_result: Callable[[ModelResult], None] | None = None,
    embeddings: EmbeddingMatrix | None = None,
    baseline_corpus: Corpus | None = None,
    gradient_steps: int | None = 100,
    resume: bool = False,
    checkpoint_every: int = 0,
    fingerprint: str | None = None,
    **model_options,
) -> Comparison:
    """Train and test each named model on the same data; write runs, figure, results and report.html.

    A model that fails is recorded with its error; the others go on and are kept.
    `baseline_corpus` (the raw texts of the same reviews) adds the reference rows (TF-IDF + logistic
    regression, NB-LR, NBSVM: evaluation/baseline.py);
    `gradient_steps` adds the gradient-per-time-step figure for one-directional recurrent models.
    Each model checkpoints beside its run (every epoch, and every `checkpoint_every` batches);
    `resume` keeps the models an interrupted comparison finished and continues the one it was
    training (comparing.py); `fingerprint` names the data (default: a hash of the corpus).
    """
    out = Path(out)
    for name in names:  # fail before any training on an unknown name or option
        model_config(name, **model_options)
    check_writable(out, "the output folder", "choose another with --out")
    if not resume:
        comparing.refuse_unresumed(out, names)
    training = training or TrainConfig()
    fingerprint = fingerprint or comparing.corpus_digest(corpus)
    trained: dict[str, SequenceClassifier] = {}
    results: list[ModelResult] = []
    for name in names:
        recipe = comparing.model_recipe(name, corpus, training, model_options, fingerprint,
                                        embeddings.describe() if embeddings else None)
        try:
            kept = comparing.finished(out / name, recipe, corpus, default_device()) if resume else None
            if kept is not None:
                model, result = kept[0], ModelResult(**kept[1])
            else:
                checkpointing = Checkpointing(comparing.checkpointer(out / name, recipe, checkpoint_every),
                                              comparing.resume_point(out / name, recipe) if resume else None,
                                              {"compare": recipe})
                model, result = train_model(name, corpus, training, out / name,
                                            reporter_for(name) if reporter_for else None, checkpointing=checkpointing,
                                            embeddings=embeddings, **model_options)
            trained[name] = model
        except Exception as error:  # keep the other models' results
            result = ModelResult(name, None, error=f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
        results.append(result)
        if on_result:
            on_result(result)
    samples = sample_predictions(trained, corpus, seed=training.seed) if trained else []
    baselines: list[BaselineResult] = []
    if baseline_corpus is not None:
        train_texts = baseline_corpus.train
        baselines = reference_baselines(train_texts.texts, train_texts.labels, baseline_corpus.test.texts,
                                        baseline_corpus.test.labels)
    profiles = gradient_profiles(trained, corpus, gradient_steps) if gradient_steps else {}
    extra_figures = {}
    if profiles:
        extra_figures["Gradient norm per time step (vanishing gradients)"] = gradient_figure(profiles, out / "gradients.png")
    settings = {"training": asdict(training), "encoder": asdict(corpus.encoder.config),
                "data": {"name": corpus.name, "train": len(corpus.train), "test": len(corpus.test)},
                "embeddings": embeddings.describe() if embeddings else None}
    rows = [r.to_dict() for r in results] + [{**asdict(baseline), "baseline": True} for baseline in baselines]
    write_json(out / "results.json", {
        "models": [r.to_dict() for r in results],
        "baselines": [asdict(baseline) for baseline in baselines],
        "gradients": {label: asdict(profile) for label, profile in profiles.items()},
        "samples": [asdict(s) for s in samples],
        **settings,
    })
    report = write_report(rows, out, samples=[asdict(s) for s in samples], extra_figures=extra_figures, settings=settings)
    figure = out / FIGURE_NAME if trained else None  # drawn by write_report
    return Comparison(results, samples, figure, out, report, baselines, profiles)
