"""The `seqlab` command: parses options, calls the Python API, prints the results."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from seqlab.errors import SeqlabError
from seqlab.models import model_names
from seqlab.text.encoder import EncoderConfig
from seqlab.training.fit import TrainConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Sequence models for text classification: train, compare, evaluate, predict.")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def _default(config_class, name: str):
    """Defaults live in the config dataclasses; the CLI only surfaces them."""
    return next(f.default for f in fields(config_class) if f.name == name)


# Options shared by `train` and `compare`, declared once.
Archive = Annotated[Optional[Path], typer.Option(help="Local copy of aclImdb_v1.tar.gz (else $SEQLAB_IMDB_ARCHIVE, else download).")]
Epochs = Annotated[int, typer.Option(help="Passes over the training reviews.")]
BatchSize = Annotated[int, typer.Option(help="Reviews per gradient step.")]
LearningRate = Annotated[float, typer.Option(help="Adam learning rate.")]
ValidationSplit = Annotated[float, typer.Option(help="Share of training reviews held out (the last, after shuffling).")]
Seed = Annotated[int, typer.Option(help="Seeds the split, weights, batch order: same seed, same numbers.")]
MaxFeatures = Annotated[int, typer.Option(help="Vocabulary size, reserved ids included (Keras num_words).")]
Maxlen = Annotated[int, typer.Option(help="Tokens kept per review.")]
Truncating = Annotated[str, typer.Option(help="Which end of a long review is cut: pre (keep the end) or post.")]
Padding = Annotated[str, typer.Option(help="Side of padding in fixed-length arrays (models ignore padding either way).")]
EmbeddingDim = Annotated[int, typer.Option(help="Size of each word vector.")]
HiddenSize = Annotated[int, typer.Option(help="Units per recurrent layer and direction.")]
TrainSize = Annotated[Optional[int], typer.Option(help="Use a random class-balanced subset of this many training reviews.")]
TestSize = Annotated[Optional[int], typer.Option(help="Use a random class-balanced subset of this many test reviews.")]


def _encoder_config(max_features, maxlen, truncating, padding) -> EncoderConfig:
    return EncoderConfig(max_features=max_features, maxlen=maxlen, truncating=truncating, padding=padding)


def _train_config(epochs, batch_size, learning_rate, validation_split, seed) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                       validation_split=validation_split, seed=seed)


def _print_corpus(corpus) -> None:
    from seqlab.text.encoder import pad_sequences

    train, test = corpus.train, corpus.test
    console.print(f"[bold]{corpus.name}[/]: {len(train):,} training and {len(test):,} test reviews, "
                  f"vocabulary {corpus.encoder.vocab_size:,} ids, maxlen {corpus.encoder.config.maxlen}")
    console.print(f"x_train shape ({len(train):,}, {corpus.encoder.config.maxlen}) after padding; "
                  f"mean length {train.lengths.mean():.1f} tokens, {train.encoded.truncated.mean():.1%} cut")
    first = train.encoded.sequence(0)
    padded = pad_sequences([first], corpus.encoder.config.maxlen, corpus.encoder.config.padding, corpus.encoder.config.truncating)[0]
    console.print(f"Decoded sample review ({corpus.label_names[int(train.labels[0])]}): "
                  f"[italic]{corpus.encoder.decode(padded)[:300]} ...[/]\n")


def _results_table(results) -> Table:
    table = Table(title="Test results")
    for column in ("model", "parameters", "test accuracy", "test loss", "best val accuracy", "s/epoch", "train s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        if r.error:
            table.add_row(r.name, "failed", r.error.splitlines()[0], "", "", "", "")
            continue
        seconds = r.history["seconds"]
        test = {"accuracy": float("nan"), "loss": float("nan"), **r.test}  # a prepared corpus may have no test split
        table.add_row(r.name.upper(), f"{r.parameters:,}", f"{test['accuracy']:.4f}", f"{test['loss']:.4f}",
                      f"{max(r.history['val_accuracy'] or [float('nan')]):.4f}",
                      f"{sorted(seconds)[len(seconds) // 2]:.1f}", f"{r.train_seconds:.1f}")
    return table


def _print_samples(samples) -> None:
    console.print("[bold]Predictions on random test reviews[/]")
    for number, sample in enumerate(samples, start=1):
        verdicts = "  ".join(f"{name.upper()}: {label} ({p:.3f})" for name, (label, p) in sample.predictions.items())
        console.print(f"{number}. [italic]{sample.text[:100]}[/]\n   true: {sample.true_label}  {verdicts}")


@app.command()
def compare(
    models: Annotated[list[str], typer.Argument(help=f"Models to train and compare: {', '.join(model_names())}.")],
    out: Annotated[Path, typer.Option(help="Folder for run directories, figure and results.json.")] = Path("runs"),
    archive: Archive = None,
    epochs: Epochs = _default(TrainConfig, "epochs"),
    batch_size: BatchSize = _default(TrainConfig, "batch_size"),
    learning_rate: LearningRate = _default(TrainConfig, "learning_rate"),
    validation_split: ValidationSplit = _default(TrainConfig, "validation_split"),
    seed: Seed = _default(TrainConfig, "seed"),
    max_features: MaxFeatures = _default(EncoderConfig, "max_features"),
    maxlen: Maxlen = _default(EncoderConfig, "maxlen"),
    truncating: Truncating = _default(EncoderConfig, "truncating"),
    padding: Padding = _default(EncoderConfig, "padding"),
    embedding_dim: EmbeddingDim = 128,
    hidden_size: HiddenSize = 64,
    train_size: TrainSize = None,
    test_size: TestSize = None,
) -> None:
    """The lecture end to end: train each model, test table, history figure, sample predictions."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table
    from seqlab.pipeline import compare as run_compare
    from seqlab.pipeline import prepare_imdb
    from seqlab.training.progress import ConsoleReporter

    for name in models:  # unknown names fail before the data is read
        build_model(name, embedding_dim=embedding_dim, hidden_size=hidden_size)
    corpus = prepare_imdb(archive, _encoder_config(max_features, maxlen, truncating, padding), train_size, test_size)
    _print_corpus(corpus)
    for name in models:
        console.print(summary_table(build_model(name, vocab_size=corpus.encoder.vocab_size,
                                                embedding_dim=embedding_dim, hidden_size=hidden_size), maxlen))
    training = _train_config(epochs, batch_size, learning_rate, validation_split, seed)
    comparison = run_compare(
        models, corpus, training, out, reporter_for=lambda name: ConsoleReporter(console, name.upper()),
        on_result=lambda r: console.print(f"{r.name.upper()}: test accuracy {r.test['accuracy']:.4f}, test loss "
                                          f"{r.test['loss']:.4f}\n" if not r.error else f"[red]{r.name} failed:[/] {r.error}"),
        embedding_dim=embedding_dim, hidden_size=hidden_size,
    )
    console.print(_results_table(comparison.results))
    if comparison.samples:
        _print_samples(comparison.samples)
    console.print(f"Runs, figure ({comparison.figure}) and results.json are in {comparison.directory}/")
    if any(r.error for r in comparison.results):
        raise typer.Exit(1)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help=f"Model name: {', '.join(model_names())}.")],
    out: Annotated[Optional[Path], typer.Option(help="Run directory to write (default runs/MODEL).")] = None,
    archive: Archive = None,
    epochs: Epochs = _default(TrainConfig, "epochs"),
    batch_size: BatchSize = _default(TrainConfig, "batch_size"),
    learning_rate: LearningRate = _default(TrainConfig, "learning_rate"),
    validation_split: ValidationSplit = _default(TrainConfig, "validation_split"),
    seed: Seed = _default(TrainConfig, "seed"),
    max_features: MaxFeatures = _default(EncoderConfig, "max_features"),
    maxlen: Maxlen = _default(EncoderConfig, "maxlen"),
    truncating: Truncating = _default(EncoderConfig, "truncating"),
    padding: Padding = _default(EncoderConfig, "padding"),
    embedding_dim: EmbeddingDim = 128,
    hidden_size: HiddenSize = 64,
    train_size: TrainSize = None,
    test_size: TestSize = None,
    prepared: Annotated[Optional[Path], typer.Option(help="Train from a corpus made by `seqlab data prepare` (memory-mapped; encoder options come from it).")] = None,
    nproc: Annotated[int, typer.Option(help="Processes to train on, launched through torchrun (gloo on CPU, nccl on GPUs).")] = 1,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint folder: saved every epoch (and --checkpoint-steps); a run finding one resumes from it.")] = None,
    checkpoint_steps: Annotated[Optional[int], typer.Option(help="Also checkpoint every this many batches.")] = None,
) -> None:
    """Train one model on IMDb (or a prepared corpus) and save its run directory."""
    from seqlab.models import build_model
    from seqlab.pipeline import prepare_imdb, train_model
    from seqlab.training import distributed
    from seqlab.training.progress import ConsoleReporter

    if nproc > 1 and not distributed.launched_by_torchrun():
        from seqlab.launch import relaunch_with_torchrun

        raise typer.Exit(relaunch_with_torchrun(nproc, sys.argv[1:]))
    build_model(model, embedding_dim=embedding_dim, hidden_size=hidden_size)
    main_process = distributed.is_main()

    def load_corpus():
        if prepared is not None:
            from seqlab.text.prepared import open_prepared

            return open_prepared(prepared)
        return prepare_imdb(archive, _encoder_config(max_features, maxlen, truncating, padding), train_size, test_size)

    if not main_process:
        distributed.barrier()  # process 0 fills the tokenized-data cache first
    corpus = load_corpus()
    if main_process:
        distributed.barrier()
        _print_corpus(corpus)
    training = _train_config(epochs, batch_size, learning_rate, validation_split, seed)
    _, result = train_model(model, corpus, training, out or Path("runs") / model, ConsoleReporter(console, model.upper()),
                            checkpoint=checkpoint, checkpoint_steps=checkpoint_steps,
                            embedding_dim=embedding_dim, hidden_size=hidden_size)
    if main_process:
        console.print(_results_table([result]))
        console.print(f"Saved run directory {result.run_directory}/")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    archive: Archive = None,
    test_size: TestSize = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Test a saved run on the IMDb test reviews, with the run's own encoder."""
    from seqlab.data import imdb
    from seqlab.predict import load

    predictor = load(run)
    corpus = imdb.load(archive)
    if test_size is not None:
        corpus = corpus.subset(None, test_size, seed=0)
    import numpy as np

    probs = predictor.predict_proba(corpus.test.texts)
    labels = corpus.test.labels
    accuracy = float((probs.argmax(1) == labels).mean())
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1)).mean())
    result = {"run": str(run), "test_reviews": len(labels), "accuracy": accuracy, "loss": loss}
    if json_output:
        console.print_json(json.dumps(result))
    else:
        console.print(f"{run}: test accuracy {accuracy:.4f}, test loss {loss:.4f} on {len(labels):,} reviews")


def _read_stdin_lines(replace_invalid: bool) -> list[str]:
    texts = []
    for number, raw in enumerate(sys.stdin.buffer.read().splitlines(), start=1):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            if not replace_invalid:
                raise SeqlabError(f"line {number} of standard input is not UTF-8 ({error.reason} at byte {error.start}); "
                                  "fix the encoding or pass --replace-invalid to replace bad bytes with U+FFFD") from None
            texts.append(raw.decode("utf-8", errors="replace"))
    return texts


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Reviews to classify; none or '-' reads one review per line from standard input.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object per review.")] = False,
    replace_invalid: Annotated[bool, typer.Option(help="Replace bytes that are not UTF-8 instead of stopping.")] = False,
) -> None:
    """Classify reviews with a saved run."""
    from seqlab.predict import load

    predictor = load(run)
    if not texts or texts == ["-"]:
        texts = _read_stdin_lines(replace_invalid)
    predictions = predictor.predict(texts)
    if json_output:
        for text, prediction in zip(texts, predictions):
            print(json.dumps({"text": text, **prediction.to_dict()}, ensure_ascii=False))
        return
    table = Table()
    for column in ("review", "predicted", "probability", "tokens"):
        table.add_column(column, max_width=70 if column == "review" else None)
    for text, p in zip(texts, predictions):
        table.add_row(text[:200], p.label, f"{p.probability:.4f}", f"{p.tokens}{' (cut)' if p.truncated else ''}")
    console.print(table)


@app.command()
def summary(
    model: Annotated[str, typer.Argument(help=f"Model name: {', '.join(model_names())}.")],
    max_features: MaxFeatures = _default(EncoderConfig, "max_features"),
    maxlen: Maxlen = _default(EncoderConfig, "maxlen"),
    embedding_dim: EmbeddingDim = 128,
    hidden_size: HiddenSize = 64,
) -> None:
    """A Keras-style summary of a model: layers, output shapes, parameters."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table

    console.print(summary_table(build_model(model, vocab_size=max_features, embedding_dim=embedding_dim,
                                            hidden_size=hidden_size), maxlen))


data_app = typer.Typer(no_args_is_help=True, help="Prepare corpora: tokenize once into memory-mapped arrays.")
app.add_typer(data_app, name="data")


@data_app.command("prepare")
def data_prepare(
    data: Annotated[Path, typer.Argument(help="The corpus: an IMDb archive (aclImdb_v1.tar.gz).")],
    out: Annotated[Path, typer.Option(help="Folder for the arrays, encoder.json and manifest.json.")],
    max_features: MaxFeatures = _default(EncoderConfig, "max_features"),
    maxlen: Maxlen = _default(EncoderConfig, "maxlen"),
    truncating: Truncating = _default(EncoderConfig, "truncating"),
    padding: Padding = _default(EncoderConfig, "padding"),
    workers: Annotated[Optional[int], typer.Option(help="Encoding processes (default: one per CPU core).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Texts per chunk (the unit of parallel work and of resuming).")] = 20_000,
) -> None:
    """Tokenize DATA once into memory-mapped arrays; a rerun after an interruption resumes."""
    import time

    from seqlab.data import imdb
    from seqlab.text.prepared import InMemorySource, open_prepared, prepare

    if not data.is_file():
        raise SeqlabError(f"no file at {data}; give the path of aclImdb_v1.tar.gz")
    started = time.perf_counter()
    corpus = imdb.read_archive(data)
    sources = {"train": InMemorySource(corpus.train.texts, corpus.train.labels),
               "test": InMemorySource(corpus.test.texts, corpus.test.labels)}
    prepare(sources, out, _encoder_config(max_features, maxlen, truncating, padding), corpus.label_names,
            name=corpus.name, chunk_size=chunk_size, workers=workers,
            progress=lambda stage, done, total: console.print(f"{stage}: {done:,}/{total:,} texts", end="\r"))
    prepared = open_prepared(out)
    console.print(f"\nPrepared {len(prepared.train):,} training and {len(prepared.test):,} test texts "
                  f"({int(prepared.train.lengths.sum() + prepared.test.lengths.sum()):,} tokens) in {out} "
                  f"in {time.perf_counter() - started:.1f} s; train with `seqlab train MODEL --prepared {out}`")


def main() -> None:
    try:
        app()
    except SeqlabError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        errors.print("interrupted; runs already saved are complete, the one in progress was not written")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
