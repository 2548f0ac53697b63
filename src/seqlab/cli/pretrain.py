"""`seqlab pretrain`: a language model or region embedding on unlabelled text, for `seqlab train MODEL --init-from RUN`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from seqlab.cli.options import (Archive, BatchSize, CheckpointEvery, Data, EmbeddingDim, Epochs, HiddenSize, Layers,
                                LearningRate, MaxFeatures, Maxlen, OutputDropout, Resume, Schedule, Seed,
                                ValidationSplit, WordDropout, data_source, default, encoder_config)
from seqlab.cli.output import console
from seqlab.data.config import DataSource
from seqlab.errors import ConfigError
from seqlab.pretraining import OBJECTIVES, PretrainRecipe, default_encoder, default_training

_ENCODER = default_encoder()
_TRAINING = default_training()
_REGIONS = "region-embedding"
# Settings the region embedding has not got (they shape the language model).
_LANGUAGE_MODEL_ONLY = ("cell", "hidden_size", "layers", "word_dropout", "output_dropout", "cutoffs")


def pretrain(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Run directory to write (checkpoints go to OUT.checkpoint/).")] = Path("runs/pretrained"),
    resume: Resume = None,
    objective: Annotated[str, typer.Option(help="language-model (for lstm/gru) or region-embedding (for seq-cnn: Johnson & Zhang's region embedding; then --max-features 30000 --maxlen 2500 --batch-size 32 unless given, and --embedding-dim sets its size, 100).")] = "language-model",
    data: Data = default(DataSource, "data"),
    archive: Archive = None,
    texts: Annotated[Optional[int], typer.Option(help="Pretrain on this many texts drawn at random (default: all training + unlabelled reviews).")] = None,
    cell: Annotated[Optional[str], typer.Option(help="Recurrent cell of the body: lstm (default), gru or rnn.")] = None,
    embedding_dim: EmbeddingDim = None,
    hidden_size: HiddenSize = None,
    layers: Layers = None,
    word_dropout: WordDropout = None,
    output_dropout: OutputDropout = None,
    cutoffs: Annotated[Optional[str], typer.Option(help="Adaptive-softmax cluster bounds as ids, comma-separated (default 2000; 'none': full softmax).")] = None,
    max_features: MaxFeatures = _ENCODER.max_features,
    maxlen: Maxlen = _ENCODER.maxlen,
    epochs: Epochs = _TRAINING.epochs,
    batch_size: BatchSize = _TRAINING.batch_size,
    learning_rate: LearningRate = _TRAINING.learning_rate,
    schedule: Schedule = _TRAINING.schedule,
    validation_split: ValidationSplit = _TRAINING.validation_split,
    seed: Seed = _TRAINING.seed,
    checkpoint_every: CheckpointEvery = 0,
) -> None:
    """Pretrain a next-word language model (recurrent body + adaptive softmax), or a region embedding for
    the seq-cnn, on IMDb's training and unlabelled reviews (never the test ones) or your --data;
    fine-tune from it with `seqlab train MODEL --init-from OUT`."""
    from dataclasses import replace

    from seqlab.pretraining import pretrain as run_pretraining
    from seqlab.pretraining import resume_pretraining
    from seqlab.training.progress import ConsoleReporter

    reporter = ConsoleReporter(console, "LM" if objective != _REGIONS else "regions")
    given = {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"}
    if resume is not None:
        settings = sorted(f"--{name.replace('_', '-')}" for name in given - {"resume"})
        if settings:
            raise ConfigError(f"--resume continues with the settings the pretraining started with; drop {', '.join(settings)}")
        result = resume_pretraining(resume, reporter, log=console.print)
    else:
        if objective not in OBJECTIVES:
            raise ConfigError(f"--objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
        regions = objective == _REGIONS
        stray = [f"--{name.replace('_', '-')}" for name in _LANGUAGE_MODEL_ONLY if name in given]
        if regions and stray:
            raise ConfigError(f"{', '.join(stray)} shape the language model; the region embedding has none of them "
                              "(drop them, or use --objective language-model)")
        model: dict[str, Any] = {key: value for key, value in {"cell": cell, "embedding_dim": embedding_dim, "hidden_size": hidden_size,
                                               "layers": layers, "word_dropout": word_dropout,
                                               "output_dropout": output_dropout}.items() if value is not None}
        if regions and "embedding_dim" in model:
            model = {"dimension": model.pop("embedding_dim")}
        if cutoffs is not None:
            model["cutoffs"] = _cutoffs(cutoffs)
        source = data_source(data, None, "text", "label", False, default(DataSource, "test_split"), archive)
        encoder_defaults, training_defaults = default_encoder(objective), default_training(objective)
        chosen: dict[str, Any] = {name: value if name in given else getattr(training_defaults, name) for name, value in
                  {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "schedule": schedule,
                   "validation_split": validation_split, "seed": seed}.items()}
        encoder = encoder_config(max_features if "max_features" in given else encoder_defaults.max_features,
                                 maxlen if "maxlen" in given else encoder_defaults.maxlen,
                                 encoder_defaults.truncating, encoder_defaults.padding)
        recipe = PretrainRecipe(model=model, encoder=encoder, training=replace(training_defaults, **chosen), data=source,
                                texts=texts, checkpoint_every=checkpoint_every, objective=objective)
        result = run_pretraining(recipe, out, reporter, log=console.print)
    if result.objective != _REGIONS:
        perplexity = f"{result.val_perplexity:.1f}" if result.val_perplexity is not None else "n/a (no validation share)"
        console.print(f"validation perplexity {perplexity}; {result.tokens:,} next words per epoch, "
                      f"{result.train_seconds / 60:.1f} min")
    else:
        loss = f"{result.val_loss:.4f}" if result.val_loss is not None else "n/a (no validation share)"
        console.print(f"validation loss {loss}; {result.tokens:,} regions per epoch, "
                      f"{result.train_seconds / 60:.1f} min")
    kind = "seq-cnn" if result.objective == _REGIONS else "lstm or gru as pretrained, any pooling"
    console.print(f"Saved pretrained run {result.run_directory}/; fine-tune with "
                  f"`seqlab train MODEL --init-from {result.run_directory}` (MODEL: {kind})")


def _cutoffs(text: str) -> list[int]:
    if text.strip().lower() == "none":
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--cutoffs takes whole numbers separated by commas (e.g. 2000,8000); got {text!r}") from None
