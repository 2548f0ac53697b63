"""`seqlab pretrain`: a model trained on unlabelled text, saved as a run directory, in one of two objectives.

- `language-model`: a next-word language model (models/language.py) whose recurrent body an LSTM or
  GRU classifier fine-tunes; its run holds the body (`body.*`), the adaptive softmax and the
  perplexity history.
- `region-embedding`: Johnson & Zhang's region embedding (models/region_embedding.py), which the
  seq-cnn reads beside its one-hot words; its run holds the region table and the loss history.

The texts are IMDb's training and unlabelled reviews (never the test ones), or the training texts
of any DataSource. They are encoded once and cached like every corpus; the model trains in the
one Trainer with its objective (training/language.py), checkpoints into OUT.checkpoint/ and resumes
exactly (`seqlab pretrain --resume OUT`). `seqlab train MODEL --init-from OUT` fine-tunes from it.
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


OBJECTIVES = ("language-model", "region-embedding")  # what a pretraining checkpoint's recipe says it is


def default_training(objective: str = "language-model") -> TrainConfig:
    """One pass with a 2% validation share; the language model's gradients clipped at 0.25."""
    if objective == "region-embedding":
        return TrainConfig(epochs=1, batch_size=32, learning_rate=3e-3, validation_split=0.02, adam_epsilon=1e-8)
    return TrainConfig(epochs=1, batch_size=64, learning_rate=3e-3, validation_split=0.02, clip_norm=0.25,
                       adam_epsilon=1e-8)


def default_encoder(objective: str = "language-model") -> EncoderConfig:
    """The language model reads each text's last 400 words of 10,000; the region embedding whole
    texts (2,500) over the seq-cnn's 30,000 words."""
    if objective == "region-embedding":
        return EncoderConfig(maxlen=2500, max_features=30_000)
    return EncoderConfig(maxlen=400)


@dataclass
class PretrainRecipe:
    model: dict[str, Any] = field(default_factory=dict)  # the objective's model config fields (LanguageModelConfig, RegionEmbeddingConfig)
    encoder: EncoderConfig | None = None  # None: default_encoder(objective)
    training: TrainConfig | None = None  # None: default_training(objective)
    data: DataSource = field(default_factory=DataSource)  # IMDb: training + unlabelled reviews
    texts: int | None = None  # pretrain on this many texts drawn at random (None: all)
    checkpoint_every: int = 0  # checkpoint every this many batches as well as every epoch
    objective: str = "language-model"  # or "region-embedding" (for the seq-cnn)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"no pretraining objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        self.encoder = self.encoder or default_encoder(self.objective)
        self.training = self.training or default_training(self.objective)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainRecipe:
        return cls(model=data["model"], encoder=EncoderConfig(**data["encoder"]),
                   training=TrainConfig(**data["training"]), data=DataSource(**data["data"]), texts=data["texts"],
                   checkpoint_every=data["checkpoint_every"], objective=data.get("objective", "language-model"))


@dataclass
class PretrainResult:
    run_directory: Path | None
    history: dict[str, list[float]]
    val_perplexity: float | None  # language model only
    tokens: int  # words predicted (language model) or regions read (region embedding) per epoch
    train_seconds: float
    val_loss: float | None = None
    objective: str = "language-model"


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
    from seqlab.runs import save_run
    from seqlab.text.cache import load_or_encode
    from seqlab.training import distributed
    from seqlab.training.callbacks import training_callbacks
    from seqlab.training.checkpoint import LATEST, Checkpointer, checkpoint_directory
    from seqlab.training.fit import Trainer, default_device, split_validation

    if distributed.current() is not None:
        raise ConfigError("seqlab pretrain runs on one process; drop --nproc / torchrun")
    out = Path(out)
    directory = checkpoint_directory(out)
    if resume_from is None and (directory / LATEST).exists():
        raise RunError(f"{directory} holds a checkpoint of an unfinished pretraining at {out}; continue it with "
                       f"`seqlab pretrain --resume {out}`, or delete {directory} to start again")
    key = texts_fingerprint(recipe.data, recipe.texts)
    encoder, training = recipe.encoder, recipe.training
    assert encoder is not None and training is not None  # PretrainRecipe.__post_init__ fills both
    corpus, hit = load_or_encode(key, lambda: pretraining_texts(recipe.data, recipe.texts), encoder,
                                 imdb.cache_dir())
    log(f"{len(corpus.train):,} texts to pretrain on ({'encoded from the cache' if hit else 'encoded'}), "
        f"vocabulary {corpus.encoder.vocab_size:,}")
    torch.manual_seed(training.seed)
    model, objective = build_pretraining_model(recipe, corpus)
    model.to(default_device())
    train, validation = split_validation(corpus.train, training.validation_split, training.seed, copy=False)
    trainer = Trainer(model, train, validation, training, reporter, objective=objective)
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
    language = recipe.objective == "language-model"
    words = int(np.maximum(train.lengths - 1, 0).sum()) if language else int(train.lengths.sum())
    val = history["val_perplexity"][-1] if history["val_perplexity"] else None
    val_loss = history["val_loss"][-1] if history["val_loss"] else None
    run = save_run(out, model, corpus.encoder, (), training=asdict(training), history=history,
                   metrics={"val_perplexity": val, "val_loss": val_loss, "train_seconds": seconds,
                            "tokens_per_epoch": words,
                            "tokens_per_second": words * len(history["loss"]) / max(sum(history["seconds"]), 1e-9)},
                   data={"source": recipe.data.data, "texts": len(corpus.train), "train": len(train),
                         "validation": len(validation or []), "recipe": saved})
    checkpointer.finish()
    return PretrainResult(run, history, val, words, seconds, val_loss, recipe.objective)


def build_pretraining_model(recipe: PretrainRecipe, corpus):
    """The model and Trainer objective `recipe.objective` names, sized to the encoded `corpus`."""
    import numpy as np
    import torch

    from seqlab.training.language import LanguageModelling, RegionPrediction

    vocab = corpus.encoder.vocab_size
    options = dict(recipe.model)
    if recipe.objective == "region-embedding":
        from seqlab.models.region_embedding import RegionEmbeddingConfig, RegionEmbeddingModel

        model = RegionEmbeddingModel(model_config(RegionEmbeddingConfig, {**options, "vocab_size": vocab}))
        counts = np.bincount(np.asarray(corpus.train.encoded.ids), minlength=vocab)[:vocab]
        model.set_word_counts(torch.from_numpy(counts))
        return model, RegionPrediction()
    from seqlab.models.language import LanguageModel, LanguageModelConfig

    options["cutoffs"] = [c for c in options.get("cutoffs", LanguageModelConfig().cutoffs) if c < vocab]
    return LanguageModel(model_config(LanguageModelConfig, {**options, "vocab_size": vocab})), LanguageModelling()


def model_config(config_class, options: dict[str, Any]):
    """`config_class(**options)`; a setting it does not have is an error naming the ones it has."""
    from dataclasses import fields

    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"the pretraining model has no setting {', '.join(unknown)}; its settings are "
                          f"{', '.join(sorted(known - {'vocab_size'}))}")
    return config_class(**options)


def resume_pretraining(run: str | Path, reporter=None, log: Callable[[str], None] = lambda message: None) -> PretrainResult:
    """Continue the interrupted pretraining at `run` from its latest checkpoint, exactly."""
    from seqlab.training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run)
    if checkpoint.recipe.get("objective") not in OBJECTIVES:
        raise RunError(f"{checkpoint.directory} is a classifier's checkpoint; resume it with `seqlab train --resume {run}`")
    recipe = PretrainRecipe.from_dict(checkpoint.recipe)
    out = Path(checkpoint.recipe.get("out") or run)
    return pretrain(recipe, out, reporter, resume_from=checkpoint, log=log)

