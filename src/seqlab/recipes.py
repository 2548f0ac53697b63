"""A training run as data: what to train on what, so that it can be started and resumed.

`train_recipe` is the one training entry: `seqlab train` runs it on one process, and every
process of a torchrun launch (`--nproc N`) runs it too. The recipe is stored in every
checkpoint; ``seqlab train --resume RUN`` rebuilds the data, model and trainer from it and
continues where the checkpoint left off, on any number of processes. `pretrained_embeddings`
turns `--embeddings` (word2vec on IMDb's own reviews, or a vectors file) into the matrix to start from.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from seqlab.data.sources import DataSource
from seqlab.errors import ConfigError, RunError
from seqlab.models import recorded_model_options, saved_model_options
from seqlab.pipeline import (Checkpointing, ModelResult, Prepared, check_outputs, prepare,
                             train_model)
from seqlab.models.embeddings import EmbeddingMatrix
from seqlab.text.cache import EncodedCorpus
from seqlab.text.encoder import EncoderConfig
from seqlab.text.prepared import read_manifest
from seqlab.training import distributed
from seqlab.training.checkpoint import LATEST, Checkpoint, Checkpointer, checkpoint_directory, load_checkpoint
from seqlab.training.fit import Reporter, TrainConfig


@dataclass
class Recipe:
    model: str  # a registered model name
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. embedding_dim, hidden_size
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    data: DataSource = field(default_factory=DataSource)  # also a folder made by `seqlab data prepare`
    train_size: int | None = None  # class-balanced subsets, for quick runs
    test_size: int | None = None
    checkpoint_every: int = 0  # checkpoint every this many batches as well as every epoch (0: epochs only)
    embeddings: str | None = None  # pretrained vectors: 'word2vec' or a vectors file; None trains from scratch
    init_from: str | None = None  # a `seqlab pretrain` run whose body initialises the model (fine-tuning)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """A recipe read back from a checkpoint (model options a release before lacked mean what they meant then)."""
        return cls(**{**data, "encoder": EncoderConfig(**data["encoder"]), "training": TrainConfig(**data["training"]),
                      "data": DataSource(**data["data"]),
                      "model_options": saved_model_options(data["model"], data.get("model_options", {}))})


def prepared_data(directory: str | Path, source: DataSource) -> DataSource:
    """`seqlab train --prepared DIR`: `source` with the corpus `seqlab data prepare` made at DIR as its data."""
    if source.data != DataSource().data:
        raise ConfigError("--prepared and --data both name the data; give one")
    read_manifest(directory)  # a missing or unfinished folder is refused here, naming the fix
    return replace(source, data=str(directory))


def _prepare(recipe: Recipe) -> Prepared:
    # A prepared folder brings its own encoder: the default settings mean "the folder's", others must match it.
    encoder = None if recipe.data.is_prepared and recipe.encoder == EncoderConfig() else recipe.encoder
    vocabulary = None
    if recipe.init_from is not None:  # the pretrained run's words, so that every word it learned reaches the model
        from seqlab.training.finetune import pretrained_vocabulary

        vocabulary = pretrained_vocabulary(recipe.init_from, recipe.encoder)
    return prepare(recipe.data, encoder, recipe.train_size, recipe.test_size, vocabulary=vocabulary)


def _recorded(recipe: Recipe, out: Path) -> dict[str, Any]:
    """The recipe as a checkpoint keeps it: paths made absolute, since a resume may start elsewhere."""
    saved = {**recipe.to_dict(), "out": str(out.resolve()),
             "model_options": recorded_model_options(recipe.model, recipe.model_options)}
    if not recipe.data.is_imdb:
        saved["data"] |= {key: str(Path(path).resolve()) for key in ("data", "test_data") if (path := saved["data"][key])}
    return saved


def _restarted_by_torchrun() -> bool:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def train_recipe(
    recipe: Recipe,
    out: str | Path,
    reporter: Reporter | None = None,
    on_prepared: Callable[[Prepared], None] | None = None,
    resume_from: Checkpoint | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Any, ModelResult]:
    """Train `recipe` into the run directory `out`, checkpointing beside it (OUT.checkpoint/).

    Every process of a torchrun launch calls this; process 0 reads and caches the data first,
    and alone prints, checkpoints and writes the run (`on_prepared` and `log` run there only).
    """
    if recipe.data.in_memory:
        raise ConfigError(f"a recipe is kept in checkpoints as JSON and {recipe.data.memory_kind}= data cannot be; "
                          "train on in-memory data with seqlab.prepare(DataSource(...)) and seqlab.train_model, "
                          "or write it to a file for --resume")
    out = Path(out)
    directory = checkpoint_directory(out)
    if resume_from is None and (directory / LATEST).exists():
        if not _restarted_by_torchrun():
            raise RunError(f"{directory} holds a checkpoint of an unfinished run at {out}; continue it with "
                           f"`seqlab train --resume {out}`, or delete {directory} to start again")
        resume_from = load_checkpoint(directory)  # torchrun --max-restarts reran the command: continue
        recorded = json.loads(json.dumps(_recorded(recipe, out)))  # as it reads back from the checkpoint
        if {key: value for key, value in resume_from.recipe.items() if key != "fingerprint"} != recorded:
            raise RunError(f"{directory} holds a checkpoint of another recipe; delete it to start again")
    main = distributed.is_main()
    if main:
        check_outputs(out.parent, recipe.data)  # before any data is read
    if not main:
        distributed.barrier()  # process 0 fills the data caches (encoded corpus, word2vec) first
    prepared = _prepare(recipe)
    if resume_from is not None and resume_from.recipe.get("fingerprint") != prepared.fingerprint:
        raise RunError(f"the data of {out} changed since the checkpoint was written (its content or the encoder "
                       "settings differ), so the run cannot continue exactly; restore the data or start afresh")
    options = dict(recipe.model_options)
    if recipe.init_from is not None:
        from seqlab.training.finetune import body_options

        if recipe.embeddings is not None:
            raise ConfigError("--init-from brings the pretrained word vectors; drop --embeddings")
        options = body_options(recipe.init_from, options, recipe.model)
    matrix = pretrained_embeddings(recipe.embeddings, recipe.data, prepared.corpus, options.get("embedding_dim"),
                                   recipe.train_size, log if main else lambda message: None)
    if main:
        distributed.barrier()
    if on_prepared and main:
        on_prepared(prepared)
    saved = _recorded(recipe, out) | {"fingerprint": prepared.fingerprint}
    callback = Checkpointer(directory, saved, every_steps=recipe.checkpoint_every)
    data = {"source": saved["data"]["data"], "test_source": recipe.data.test_data,
            "summary": prepared.summary.to_dict()}
    if matrix is not None:
        options["embedding_dim"] = matrix.dimension
    if recipe.init_from is not None:
        data["init_from"] = str(Path(recipe.init_from).resolve())
    return train_model(recipe.model, prepared.corpus, recipe.training, out, reporter,
                       checkpointing=Checkpointing(callback, resume_from, data), embeddings=matrix,
                       init_from=recipe.init_from, log=log if main else lambda message: None, **options)


def resume(
    run: str | Path, reporter: Reporter | None = None, on_prepared: Callable[[Prepared], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Any, ModelResult]:
    """Continue the interrupted run at `run` from its latest checkpoint, exactly (on the process
    count it started with; on another, from the same state with the batches shared out anew)."""
    from seqlab.pretraining import OBJECTIVES

    checkpoint = load_checkpoint(run)
    if checkpoint.recipe.get("objective") in OBJECTIVES:
        raise RunError(f"{checkpoint.directory} is a pretraining checkpoint; resume it with `seqlab pretrain --resume {run}`")
    known = {f.name for f in fields(Recipe)}
    try:
        recipe = Recipe.from_dict({k: v for k, v in checkpoint.recipe.items() if k in known})
    except (TypeError, KeyError) as error:
        raise RunError(f"the checkpoint in {checkpoint.directory} has an unreadable recipe ({error})") from None
    out = Path(checkpoint.recipe.get("out") or run)
    if checkpoint_directory(out) != checkpoint.directory:  # the folder was moved: the run goes beside it
        out = checkpoint.directory.with_name(checkpoint.directory.name.removesuffix(".checkpoint"))
    return train_recipe(recipe, out, reporter, on_prepared, resume_from=checkpoint, log=log)


def pretrained_embeddings(
    name: str | None,
    data: DataSource,
    corpus: EncodedCorpus,
    embedding_dim: int | None = None,
    train_size: int | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> EmbeddingMatrix | None:
    """The pretrained matrix for `corpus`'s vocabulary: 'word2vec' (trained on IMDb's training and
    unlabelled reviews, never the test ones; cached) or a vectors file (GloVe, word2vec, fastText)."""
    if name is None:
        return None
    from seqlab.data import imdb
    from seqlab.models.embeddings import embedding_matrix, read_vectors

    if name == "word2vec":
        if not data.is_imdb:
            raise ConfigError("--embeddings word2vec trains on IMDb's unlabelled reviews; with your own --data, "
                              "pass a vectors file (GloVe .txt, word2vec/fastText .vec or gensim binary)")
        from seqlab.text.word2vec import Word2VecConfig, cached_word2vec

        raw = imdb.load(data.archive, unlabelled=True)
        if train_size is not None:
            from seqlab.data.sources import SUBSET_SEED

            raw = raw.subset(train_size, None, seed=SUBSET_SEED)  # the training reviews prepare drew
        config = Word2VecConfig(dimension=embedding_dim or Word2VecConfig.dimension)
        log(f"word2vec on {len(raw.train):,} training + {len(raw.unlabelled):,} unlabelled reviews "
            f"(never the test reviews), {config.dimension} dimensions ...")
        path, hit = cached_word2vec(raw, corpus.encoder.config, config, imdb.cache_dir())
        log(f"word2vec vectors {'from the cache' if hit else 'trained'}: {path}")
    else:
        path = Path(name)
    matrix = embedding_matrix(read_vectors(path), corpus.encoder)
    if embedding_dim is not None and embedding_dim != matrix.dimension:
        raise ConfigError(f"--embedding-dim is {embedding_dim} but the vectors in {path} have {matrix.dimension} "
                          f"dimensions; pass --embedding-dim {matrix.dimension} or leave it out")
    log(f"Embeddings: {matrix.describe()}")
    return matrix
