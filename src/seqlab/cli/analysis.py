"""`seqlab summary`, `seqlab embeddings word2vec` and `seqlab gradients`: looking into models and word vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqlab.cli.options import Archive, Epochs, MaxFeatures, Maxlen, Seed, TrainSize, default, takes_architecture
from seqlab.cli.output import console
from seqlab.models.names import model_names
from seqlab.text.config import EncoderConfig, Word2VecConfig
from seqlab.training.config import TrainConfig


@takes_architecture
def summary(
    model: Annotated[str, typer.Argument(help=f"Model name: {', '.join(model_names())}.")],
    max_features: MaxFeatures = default(EncoderConfig, "max_features"),
    maxlen: Maxlen = default(EncoderConfig, "maxlen"),
    *,
    architecture: dict,  # the model-shape options (options.py)
) -> None:
    """A Keras-style summary of a model: layers, output shapes, parameters."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table

    console.print(summary_table(build_model(model, vocab_size=max_features, **architecture), maxlen))


def word2vec(
    out: Annotated[Path, typer.Option(help="Where to write the vectors (word2vec binary format, .bin).")] = Path("runs/word2vec.bin"),
    archive: Archive = None,
    dimension: Annotated[int, typer.Option(help="Size of each vector (use the same --embedding-dim when training).")] = default(Word2VecConfig, "dimension"),
    epochs: Annotated[int, typer.Option(help="Passes over the reviews.")] = default(Word2VecConfig, "epochs"),
    window: Annotated[int, typer.Option(help="Context words either side.")] = default(Word2VecConfig, "window"),
    min_count: Annotated[int, typer.Option(help="Ignore words seen fewer times.")] = default(Word2VecConfig, "min_count"),
    skip_gram: Annotated[bool, typer.Option(help="Skip-gram instead of CBOW (slower, better for rare words).")] = default(Word2VecConfig, "skip_gram"),
    train_size: TrainSize = None,
    unlabelled_size: Annotated[Optional[int], typer.Option(help="Use only this many unlabelled reviews.")] = None,
) -> None:
    """Train word2vec (gensim) on the 50,000 unlabelled plus the training reviews, never the test reviews."""
    from dataclasses import replace

    from seqlab.data import imdb
    from seqlab.models.embeddings import read_vectors
    from seqlab.text.word2vec import cached_word2vec

    config = Word2VecConfig(dimension=dimension, epochs=epochs, window=window, min_count=min_count, skip_gram=skip_gram)
    raw = imdb.load(archive, unlabelled=True)
    if train_size is not None:
        raw = raw.subset(train_size, None, seed=0)
    if unlabelled_size is not None:
        raw = replace(raw, unlabelled=raw.unlabelled[:unlabelled_size])
    console.print(f"word2vec on {len(raw.train):,} training + {len(raw.unlabelled):,} unlabelled reviews "
                  f"(the {len(raw.test):,} test reviews are never read into it)")
    path, hit = cached_word2vec(raw, EncoderConfig(), config, imdb.cache_dir(), out=out)
    vectors = read_vectors(path)
    console.print(f"{'From the cache' if hit else 'Trained'}: {len(vectors.words):,} words x {vectors.dimension} "
                  f"dimensions, written to {path}")
    console.print(f"Use them with: seqlab train lstm --embeddings {path}")


def gradients(
    models: Annotated[list[str], typer.Argument(help="One-directional recurrent models (e.g. rnn lstm gru) or run directories.")],
    out: Annotated[Path, typer.Option(help="Folder for gradients.png and gradients.json.")] = Path("runs/gradients"),
    archive: Archive = None,
    epochs: Epochs = 1,
    seed: Seed = default(TrainConfig, "seed"),
    max_features: MaxFeatures = default(EncoderConfig, "max_features"),
    maxlen: Maxlen = default(EncoderConfig, "maxlen"),
    steps: Annotated[int, typer.Option(help="Time steps measured: reviews at least this long, cut to their last STEPS tokens.")] = 200,
    reviews: Annotated[int, typer.Option(help="Test reviews the gradient is averaged over.")] = 64,
    train_size: TrainSize = 5000,
) -> None:
    """Show vanishing gradients: ||dLoss/dh_t|| per time step, trained vs freshly initialised models."""
    from dataclasses import asdict

    from seqlab.errors import ConfigError
    from seqlab.evaluation.gradients import encode_test_reviews, gradient_figure, gradient_profile, supports
    from seqlab.files import write_json
    from seqlab.models import build_model, model_config
    from seqlab.data.config import DataSource
    from seqlab.pipeline import prepare, train_model
    from seqlab.predict import load
    from seqlab.training.progress import ConsoleReporter

    for name in models:
        if not Path(name).is_dir() and not supports(model_config(name)):
            raise ConfigError(f"{name!r} cannot be measured: gradients supports one-directional recurrent models "
                              f"({', '.join(n for n in model_names() if supports(model_config(n)))}) or their run directories")
    corpus = None
    profiles = {}
    for name in models:
        if Path(name).is_dir():
            # A trained run reads the test reviews through its own vocabulary.
            run = load(name).run
            trained, label = run.model, Path(name).name
            test = encode_test_reviews(archive, run.encoder, steps)
        else:
            if corpus is None:
                corpus = prepare(DataSource(archive=str(archive) if archive else None),
                                 EncoderConfig(max_features=max_features, maxlen=max(maxlen, steps)), train_size).corpus
            test = corpus.test
            trained, _ = train_model(name, corpus, TrainConfig(epochs=epochs, seed=seed), None,
                                     ConsoleReporter(console, name.upper()))
            label = name
        if not supports(trained):
            raise ConfigError(f"{name} is not a one-directional recurrent model")
        import torch

        torch.manual_seed(seed)
        fresh = build_model(trained.name, config=trained.config)
        profiles[f"{label} (trained)"] = gradient_profile(label, trained, test, steps, reviews, seed)
        profiles[f"{label} (fresh)"] = gradient_profile(label, fresh, test, steps, reviews, seed)
    figure = gradient_figure(profiles, out / "gradients.png")
    write_json(out / "gradients.json", {label: asdict(p) for label, p in profiles.items()})
    for label, profile in profiles.items():
        console.print(f"{label}: ||dL/dh|| at the last step {profile.norms[-1]:.3g}, {profile.steps} steps earlier "
                      f"{profile.norms[0]:.3g} (ratio {profile.ratio():.2g})")
    console.print(f"Figure: {figure}")
