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

from seqlab.cli_analysis import register as _register_analysis
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
EmbeddingDim = Annotated[Optional[int], typer.Option(help="Size of each word vector (default: the model's, 128; with --embeddings: the file's).")]
HiddenSize = Annotated[Optional[int], typer.Option(help="Units per recurrent layer and direction (transformer: feed-forward width).")]
Layers = Annotated[Optional[int], typer.Option(help="Layers stacked (recurrent or transformer); default 1 recurrent, 2 transformer.")]
Pooling = Annotated[Optional[str], typer.Option(help="How time steps become one vector: last, mean, max, attention (transformer: mean, max, first, attention).")]
Heads = Annotated[Optional[int], typer.Option(help="Attention heads per transformer layer.")]
EmbeddingDropout = Annotated[Optional[float], typer.Option(help="Dropout on word vectors (default 0 for recurrent models).")]
RecurrentDropout = Annotated[Optional[float], typer.Option(help="Dropout between stacked recurrent layers.")]
OutputDropout = Annotated[Optional[float], typer.Option(help="Dropout before the output layer.")]
Embeddings = Annotated[Optional[str], typer.Option(help="Pretrained vectors: 'word2vec' (trained on unlabelled + training reviews, cached), or a GloVe .txt / word2vec-fastText .vec / word2vec .bin file.")]
FreezeEmbeddings = Annotated[bool, typer.Option(help="Keep pretrained vectors fixed (default: fine-tune them).")]
WeightDecay = Annotated[float, typer.Option(help="Decoupled weight decay (AdamW); 0 keeps plain Adam.")]
ClipNorm = Annotated[Optional[float], typer.Option(help="Clip the gradients' global norm to this value.")]
Schedule = Annotated[str, typer.Option(help="Learning-rate schedule: none, plateau or cosine.")]
Patience = Annotated[Optional[int], typer.Option(help="Early stopping: stop after this many epochs without improvement.")]
RestoreBest = Annotated[bool, typer.Option(help="End with the weights of the best validation epoch.")]
Monitor = Annotated[str, typer.Option(help="What early stopping and the best checkpoint watch: val_loss or val_accuracy.")]
TrainSize = Annotated[Optional[int], typer.Option(help="Use a random class-balanced subset of this many training reviews.")]
TestSize = Annotated[Optional[int], typer.Option(help="Use a random class-balanced subset of this many test reviews.")]


def _encoder_config(max_features, maxlen, truncating, padding) -> EncoderConfig:
    return EncoderConfig(max_features=max_features, maxlen=maxlen, truncating=truncating, padding=padding)


def _train_config(epochs, batch_size, learning_rate, validation_split, seed, **options) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                       validation_split=validation_split, seed=seed, **options)


def _embeddings(source, archive, corpus, embedding_dim, train_size):
    """The pretrained matrix for `corpus`'s vocabulary, from 'word2vec' (trained here, cached) or a file."""
    if source is None:
        return None
    from seqlab.models.embeddings import embedding_matrix, read_vectors

    if source == "word2vec":
        from seqlab.data import imdb
        from seqlab.text.word2vec import Word2VecConfig, cached_word2vec

        raw = imdb.load(archive, unlabelled=True)
        if train_size is not None:
            raw = raw.subset(train_size, None, seed=0)
        config = Word2VecConfig(dimension=embedding_dim or Word2VecConfig.dimension)
        console.print(f"word2vec on {len(raw.train):,} training + {len(raw.unlabelled):,} unlabelled reviews "
                      f"(never the test reviews), {config.dimension} dimensions ...")
        path, hit = cached_word2vec(raw, corpus.encoder.config, config, imdb.cache_dir())
        console.print(f"word2vec vectors {'from the cache' if hit else 'trained'}: {path}")
    else:
        path = Path(source)
    matrix = embedding_matrix(read_vectors(path), corpus.encoder)
    if embedding_dim is not None and embedding_dim != matrix.dimension:
        from seqlab.errors import ConfigError

        raise ConfigError(f"--embedding-dim is {embedding_dim} but the vectors in {path} have {matrix.dimension} "
                          f"dimensions; pass --embedding-dim {matrix.dimension} or leave it out")
    console.print(f"Embeddings: {matrix.describe()}")
    return matrix


def _model_options(embedding_dim, hidden_size, layers, pooling, heads, embedding_dropout, recurrent_dropout,
                   output_dropout, freeze_embeddings) -> dict:
    """Model options the user set; unset ones (None) leave each model's own default."""
    return {"embedding_dim": embedding_dim, "hidden_size": hidden_size, "layers": layers, "pooling": pooling,
            "heads": heads, "embedding_dropout": embedding_dropout, "recurrent_dropout": recurrent_dropout,
            "output_dropout": output_dropout, "freeze_embeddings": freeze_embeddings or None}


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
        table.add_row(r.name.upper(), f"{r.parameters:,}", f"{r.test['accuracy']:.4f}", f"{r.test['loss']:.4f}",
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
    out: Annotated[Path, typer.Option(help="Folder for run directories, figures, results and report.html.")] = Path("runs"),
    baseline: Annotated[bool, typer.Option(help="Add TF-IDF (1-2-grams) + logistic regression to the table.")] = True,
    gradient_steps: Annotated[int, typer.Option(help="Time steps of the gradient-per-step figure (0: none).")] = 100,
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
    embedding_dim: EmbeddingDim = None,
    hidden_size: HiddenSize = None,
    layers: Layers = None,
    pooling: Pooling = None,
    heads: Heads = None,
    embedding_dropout: EmbeddingDropout = None,
    recurrent_dropout: RecurrentDropout = None,
    output_dropout: OutputDropout = None,
    embeddings: Embeddings = None,
    freeze_embeddings: FreezeEmbeddings = False,
    weight_decay: WeightDecay = _default(TrainConfig, "weight_decay"),
    clip_norm: ClipNorm = None,
    schedule: Schedule = _default(TrainConfig, "schedule"),
    patience: Patience = None,
    restore_best: RestoreBest = _default(TrainConfig, "restore_best"),
    monitor: Monitor = _default(TrainConfig, "monitor"),
    train_size: TrainSize = None,
    test_size: TestSize = None,
) -> None:
    """The lecture end to end: train each model, test table, history figure, sample predictions."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table
    from seqlab.pipeline import compare as run_compare
    from seqlab.pipeline import prepare_imdb
    from seqlab.training.progress import ConsoleReporter

    from seqlab.evaluation.report import rich_table

    options = _model_options(embedding_dim, hidden_size, layers, pooling, heads, embedding_dropout,
                             recurrent_dropout, output_dropout, freeze_embeddings)
    training = _train_config(epochs, batch_size, learning_rate, validation_split, seed, weight_decay=weight_decay,
                             clip_norm=clip_norm, schedule=schedule, patience=patience, restore_best=restore_best,
                             monitor=monitor)
    for name in models:  # unknown names and options fail before the data is read
        build_model(name, **options)
    corpus = prepare_imdb(archive, _encoder_config(max_features, maxlen, truncating, padding), train_size, test_size)
    _print_corpus(corpus)
    matrix = _embeddings(embeddings, archive, corpus, embedding_dim, train_size)
    if matrix is not None:
        options["embedding_dim"] = matrix.dimension
    for name in models:
        console.print(summary_table(build_model(name, vocab_size=corpus.encoder.vocab_size, **options), maxlen))
    raw = None
    if baseline:
        from seqlab.data import imdb

        raw = imdb.load(archive)
        if train_size is not None or test_size is not None:
            raw = raw.subset(train_size, test_size, seed=0)  # the same reviews prepare_imdb drew
    comparison = run_compare(
        models, corpus, training, out, reporter_for=lambda name: ConsoleReporter(console, name.upper()),
        on_result=lambda r: console.print(f"{r.name.upper()}: test accuracy {r.test['accuracy']:.4f}, test loss "
                                          f"{r.test['loss']:.4f}\n" if not r.error else f"[red]{r.name} failed:[/] {r.error}"),
        embeddings=matrix, baseline_corpus=raw, gradient_steps=gradient_steps or None, **options,
    )
    rows = [r.to_dict() for r in comparison.results]
    if comparison.baseline:
        from dataclasses import asdict

        rows.append({**asdict(comparison.baseline), "baseline": True})
    console.print(rich_table(rows))
    if comparison.samples:
        _print_samples(comparison.samples)
    console.print(f"Runs, figures, results.json/.md/.csv and {comparison.report} are in {comparison.directory}/")
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
    embedding_dim: EmbeddingDim = None,
    hidden_size: HiddenSize = None,
    layers: Layers = None,
    pooling: Pooling = None,
    heads: Heads = None,
    embedding_dropout: EmbeddingDropout = None,
    recurrent_dropout: RecurrentDropout = None,
    output_dropout: OutputDropout = None,
    embeddings: Embeddings = None,
    freeze_embeddings: FreezeEmbeddings = False,
    weight_decay: WeightDecay = _default(TrainConfig, "weight_decay"),
    clip_norm: ClipNorm = None,
    schedule: Schedule = _default(TrainConfig, "schedule"),
    patience: Patience = None,
    restore_best: RestoreBest = _default(TrainConfig, "restore_best"),
    monitor: Monitor = _default(TrainConfig, "monitor"),
    train_size: TrainSize = None,
    test_size: TestSize = None,
) -> None:
    """Train one model on IMDb and save its run directory."""
    from seqlab.models import build_model
    from seqlab.pipeline import prepare_imdb, train_model
    from seqlab.training.progress import ConsoleReporter

    options = _model_options(embedding_dim, hidden_size, layers, pooling, heads, embedding_dropout,
                             recurrent_dropout, output_dropout, freeze_embeddings)
    training = _train_config(epochs, batch_size, learning_rate, validation_split, seed, weight_decay=weight_decay,
                             clip_norm=clip_norm, schedule=schedule, patience=patience, restore_best=restore_best,
                             monitor=monitor)
    build_model(model, **options)
    corpus = prepare_imdb(archive, _encoder_config(max_features, maxlen, truncating, padding), train_size, test_size)
    _print_corpus(corpus)
    matrix = _embeddings(embeddings, archive, corpus, embedding_dim, train_size)
    _, result = train_model(model, corpus, training, out or Path("runs") / model, ConsoleReporter(console, model.upper()),
                            embeddings=matrix, **options)
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
    embedding_dim: EmbeddingDim = None,
    hidden_size: HiddenSize = None,
    layers: Layers = None,
    pooling: Pooling = None,
    heads: Heads = None,
) -> None:
    """A Keras-style summary of a model: layers, output shapes, parameters."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table

    console.print(summary_table(build_model(model, vocab_size=max_features, embedding_dim=embedding_dim,
                                            hidden_size=hidden_size, layers=layers, pooling=pooling, heads=heads),
                                maxlen))


def main() -> None:
    try:
        app()
    except SeqlabError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        errors.print("interrupted; runs already saved are complete, the one in progress was not written")
        raise SystemExit(130) from None


_register_analysis(app, sys.modules[__name__])  # `embeddings word2vec` and `gradients`

if __name__ == "__main__":
    main()
