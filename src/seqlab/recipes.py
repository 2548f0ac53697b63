"""A training run as data: what to train on what, so that it can be started and resumed.

The recipe is stored in every checkpoint; ``seqlab train --resume RUN`` rebuilds the data,
model and trainer from it and continues where the checkpoint left off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from seqlab.data.sources import DataSource
from seqlab.errors import RunError
from seqlab.pipeline import Checkpointing, ModelResult, Prepared, prepare, pretrained_embeddings, train_model
from seqlab.text.encoder import EncoderConfig
from seqlab.training.checkpoint import Checkpoint, Checkpointer, checkpoint_directory, load_checkpoint
from seqlab.training.fit import Reporter, TrainConfig


@dataclass
class Recipe:
    model: str  # a registered model name
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. embedding_dim, hidden_size
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    data: DataSource = field(default_factory=DataSource)
    train_size: int | None = None  # class-balanced subsets, for quick runs
    test_size: int | None = None
    checkpoint_every: int = 0  # checkpoint every this many batches as well as every epoch (0: epochs only)
    embeddings: str | None = None  # pretrained vectors: 'word2vec' or a vectors file; None trains from scratch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return cls(**{**data, "encoder": EncoderConfig(**data["encoder"]), "training": TrainConfig(**data["training"]),
                      "data": DataSource(**data["data"])})


def _prepare(recipe: Recipe) -> Prepared:
    return prepare(recipe.data, recipe.encoder, recipe.train_size, recipe.test_size)


def train_recipe(
    recipe: Recipe,
    out: str | Path,
    reporter: Reporter | None = None,
    on_prepared: Callable[[Prepared], None] | None = None,
    resume_from: Checkpoint | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Any, ModelResult]:
    """Train `recipe` into the run directory `out`, checkpointing beside it (OUT.checkpoint/)."""
    out = Path(out)
    directory = checkpoint_directory(out)
    if resume_from is None and (directory / "latest.json").exists():
        raise RunError(f"{directory} holds a checkpoint of an unfinished run at {out}; continue it with "
                       f"`seqlab train --resume {out}`, or delete {directory} to start again")
    prepared = _prepare(recipe)
    if resume_from is not None and resume_from.recipe.get("fingerprint") != prepared.fingerprint:
        raise RunError(f"the data of {out} changed since the checkpoint was written (its content or the encoder "
                       "settings differ), so the run cannot continue exactly; restore the data or start afresh")
    if on_prepared:
        on_prepared(prepared)
    saved = {**recipe.to_dict(), "out": str(out.resolve()), "fingerprint": prepared.fingerprint}
    if not recipe.data.is_imdb:  # a resume may start in another working directory
        saved["data"] |= {key: str(Path(saved["data"][key]).resolve()) for key in ("data", "test_data") if saved["data"][key]}
    callback = Checkpointer(directory, saved, every_steps=recipe.checkpoint_every)
    data = {"source": recipe.data.data if recipe.data.is_imdb else str(Path(recipe.data.data).resolve()),
            "test_source": recipe.data.test_data, "summary": prepared.summary.to_dict()}
    options = dict(recipe.model_options)
    matrix = pretrained_embeddings(recipe.embeddings, recipe.data, prepared.corpus, options.get("embedding_dim"),
                                   recipe.train_size, log)
    if matrix is not None:
        options["embedding_dim"] = matrix.dimension
    return train_model(recipe.model, prepared.corpus, recipe.training, out, reporter,
                       checkpoints=Checkpointing(callback, resume_from, data), embeddings=matrix, **options)


def resume(
    run: str | Path, reporter: Reporter | None = None, on_prepared: Callable[[Prepared], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Any, ModelResult]:
    """Continue the interrupted run at `run` from its latest checkpoint, exactly."""
    checkpoint = load_checkpoint(run)
    try:
        recipe = Recipe.from_dict({k: v for k, v in checkpoint.recipe.items() if k not in ("out", "fingerprint")})
    except (TypeError, KeyError) as error:
        raise RunError(f"the checkpoint in {checkpoint.directory} has an unreadable recipe ({error})") from None
    out = Path(checkpoint.recipe.get("out") or run)
    if checkpoint_directory(out) != checkpoint.directory:  # the folder was moved: the run goes beside it
        out = checkpoint.directory.with_name(checkpoint.directory.name.removesuffix(".checkpoint"))
    return train_recipe(recipe, out, reporter, on_prepared, resume_from=checkpoint, log=log)
