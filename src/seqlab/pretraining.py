"""`seqlab pretrain`: a next-word language model trained on unlabelled text, saved as a run directory.

The texts are IMDb's training and unlabelled reviews (never the test ones), or the training texts
of any DataSource. They are encoded once and cached like every corpus; the model trains in the
one Trainer with the LanguageModelling objective, checkpoints into OUT.checkpoint/ and resumes
exactly (`seqlab pretrain --resume OUT`). The run directory holds config.json, encoder.json,
model.safetensors (the body, `body.*`, and the adaptive softmax) and the perplexity history;
`seqlab train MODEL --init-from OUT` fine-tunes its body as a classifier.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from seqlab.data.config import DataSource
from seqlab.errors import ConfigError, RunError
from seqlab.text.config import EncoderConfig
from seqlab.training.config import TrainConfig


OBJECTIVE = "language-model"  # what a pretraining checkpoint's recipe says it is


def default_training() -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=64, learning_rate=3e-3, validation_split=0.02, clip_norm=0.25,
                       adam_epsilon=1e-8)


@dataclass
class PretrainRecipe:
    model: dict[str, Any] = field(default_factory=dict)  # LanguageModelConfig fields (cell, hidden_size, cutoffs...)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(maxlen=400))  # texts cut to their last 400 words
    training: TrainConfig = field(default_factory=default_training)  # one pass, a 2% validation share
    data: DataSource = field(default_factory=DataSource)  # IMDb: training + unlabelled reviews
    texts: int | None = None  # pretrain on this many texts drawn at random (None: all)
    checkpoint_every: int = 0  # checkpoint every this many batches as well as every epoch

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "objective": OBJECTIVE}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainRecipe:
        return cls(model=data["model"], encoder=EncoderConfig(**data["encoder"]),
                   training=TrainConfig(**data["training"]), data=DataSource(**data["data"]), texts=data["texts"],
                   checkpoint_every=data["checkpoint_every"])


@dataclass
class PretrainResult:
    run_directory: Path | None
    history: dict[str, list[float]]
    val_perplexity: float | None
    tokens: int  # next words predicted per epoch
    train_seconds: float


def pretraining_texts(source: DataSource, texts: int | None = None):
    """The texts to pretrain on as a Corpus whose training split holds them (labels all 0): IMDb's
    training and unlabelled reviews, else the source's training texts; never test texts."""
    import numpy as np

    from seqlab.data import imdb
    from seqlab.data.corpus import Corpus, Split
    from seqlab.data.sources import load_corpus

    if source.is_prepared:
        raise ConfigError(f"{source.data} is a prepared corpus of token ids; pretrain on the data it was made from")
    corpus = imdb.load(source.archive, unlabelled=True) if source.is_imdb else load_corpus(source)
    pool = list(corpus.train.texts) + list(corpus.unlabelled)
    if texts is not None:
        if texts < 2:
            raise ConfigError(f"texts must be at least 2; got {texts}")
        chosen = np.sort(np.random.default_rng(0).permutation(len(pool))[:texts])
        pool = [pool[i] for i in chosen]
    empty = Split([], np.zeros(0, dtype=np.int64))
    return Corpus(f"{corpus.name}-pretraining", Split(pool, np.zeros(len(pool), dtype=np.int64)), empty, ("text",),
                  texts_fingerprint(source, texts))


def texts_fingerprint(source: DataSource, texts: int | None) -> str:
    from seqlab.data.sources import fingerprint

    return f"{fingerprint(source)}|pretraining(train+unlabelled,texts={texts})"


def pretrain(
    recipe: PretrainRecipe,
    out: str | Path,
    reporter=None,
    resume_from=None,
    log: Callable[[str], None] = lambda message: None,
) -> PretrainResult:
    """Train the language model `recipe` describes into the run directory `out` (checkpointing beside it)."""
    import numpy as np
    import torch

    from seqlab.data import imdb
    from seqlab.models.language import LanguageModel, LanguageModelConfig
    from seqlab.runs import save_run
    from seqlab.text.cache import load_or_encode
    from seqlab.training import distributed
    from seqlab.training.callbacks import training_callbacks
    from seqlab.training.checkpoint import LATEST, Checkpointer, checkpoint_directory
    from seqlab.training.fit import Trainer, default_device, split_validation
    from seqlab.training.language import LanguageModelling

    if distributed.current() is not None:
        raise ConfigError("seqlab pretrain runs on one process; drop --nproc / torchrun")
    out = Path(out)
    directory = checkpoint_directory(out)
    if resume_from is None and (directory / LATEST).exists():
        raise RunError(f"{directory} holds a checkpoint of an unfinished pretraining at {out}; continue it with "
                       f"`seqlab pretrain --resume {out}`, or delete {directory} to start again")
    key = texts_fingerprint(recipe.data, recipe.texts)
    corpus, hit = load_or_encode(key, lambda: pretraining_texts(recipe.data, recipe.texts), recipe.encoder,
                                 imdb.cache_dir())
    log(f"{len(corpus.train):,} texts to pretrain on ({'encoded from the cache' if hit else 'encoded'}), "
        f"vocabulary {corpus.encoder.vocab_size:,}")
    options = dict(recipe.model)
    vocab = corpus.encoder.vocab_size
    options["cutoffs"] = [c for c in options.get("cutoffs", LanguageModelConfig().cutoffs) if c < vocab]
    config = LanguageModelConfig(**{**options, "vocab_size": vocab})
    training = recipe.training
    torch.manual_seed(training.seed)
    model = LanguageModel(config).to(default_device())
    train, validation = split_validation(corpus.train, training.validation_split, training.seed, copy=False)
    trainer = Trainer(model, train, validation, training, reporter, objective=LanguageModelling())
    trainer.callbacks.extend(training_callbacks(trainer))
    saved = {**recipe.to_dict(), "out": str(out.resolve()), "fingerprint": key}
    checkpointer = Checkpointer(directory, saved, every_steps=recipe.checkpoint_every)
    trainer.callbacks.append(checkpointer)
    if resume_from is not None:
        if resume_from.recipe.get("fingerprint") != key:
            raise RunError(f"the texts of {out} changed since the checkpoint was written; start afresh")
        checkpointer.restore(trainer, resume_from)
    started = time.perf_counter()
    history = asdict(trainer.fit())
    seconds = time.perf_counter() - started
    words = int(np.maximum(train.lengths - 1, 0).sum())
    val = history["val_perplexity"][-1] if history["val_perplexity"] else None
    run = save_run(out, model, corpus.encoder, (), training=asdict(training), history=history,
                   metrics={"val_perplexity": val, "train_seconds": seconds, "tokens_per_epoch": words,
                            "tokens_per_second": words * len(history["loss"]) / max(sum(history["seconds"]), 1e-9)},
                   data={"source": recipe.data.data, "texts": len(corpus.train), "train": len(train),
                         "validation": len(validation or []), "recipe": saved})
    checkpointer.finish()
    return PretrainResult(run, history, val, words, seconds)


def resume_pretraining(run: str | Path, reporter=None, log: Callable[[str], None] = lambda message: None) -> PretrainResult:
    """Continue the interrupted pretraining at `run` from its latest checkpoint, exactly."""
    from seqlab.training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run)
    if checkpoint.recipe.get("objective") != OBJECTIVE:
        raise RunError(f"{checkpoint.directory} is a classifier's checkpoint; resume it with `seqlab train --resume {run}`")
    recipe = PretrainRecipe.from_dict(checkpoint.recipe)
    out = Path(checkpoint.recipe.get("out") or run)
    return pretrain(recipe, out, reporter, resume_from=checkpoint, log=log)

