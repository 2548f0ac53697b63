"""The `seqlab` command: parses options, calls the Python API, prints the results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from seqlab.cli_analysis import register as _register_analysis
from seqlab.cli_options import (Archive, CheckpointEvery, EmbeddingDim, Heads, HiddenSize, LabelColumn, Layers,
                                 MaxFeatures, Maxlen, Ngrams, Onnx, Padding, Pooling, Precision, ReplaceInvalid, Resume,
                                 RunOptions, TestSize, TextColumn, Truncating, data_source, default, encoder_config,
                                 takes_run_options)
from seqlab.data.sources import DataSource
from seqlab.errors import ConfigError, SeqlabError
from seqlab.models import model_names
from seqlab.serve.config import ServeConfig
from seqlab.text.encoder import EncoderConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Sequence models for text classification: train, compare, evaluate, predict.")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def _print_summary(summary) -> None:
    table = Table(title=f"Data: {summary.name}")
    for column in ("class", "train", "test"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, train, test in zip(summary.label_names, summary.train_counts, summary.test_counts):
        table.add_row(name, f"{train:,}", f"{test:,}")
    console.print(table)
    lengths = ", ".join(f"{key} {value:,.0f}" for key, value in summary.length_percentiles.items())
    console.print(f"tokens per training text: {lengths}; {summary.cut_share:.1%} longer than maxlen {summary.maxlen}")
    console.print(f"vocabulary {summary.vocab_size:,} ids covers {summary.train_coverage:.1%} of training tokens, "
                  f"{summary.test_coverage:.1%} of test tokens; duplicates: {summary.text.train_duplicates:,} in train, "
                  f"{summary.text.test_duplicates:,} in test; in both train and test: {summary.text.overlap:,}")
    for warning in summary.warnings:
        errors.print(f"[bold yellow]warning:[/] {warning}")


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
@takes_run_options
def compare(
    models: Annotated[list[str], typer.Argument(help=f"Models to train and compare: {', '.join(model_names())}.")],
    out: Annotated[Path, typer.Option(help="Folder for run directories, figures, results and report.html.")] = Path("runs"),
    baseline: Annotated[bool, typer.Option(help="Add TF-IDF (1-2-grams) + logistic regression to the table.")] = True,
    gradient_steps: Annotated[int, typer.Option(help="Time steps of the gradient-per-step figure (0: none).")] = 100,
    *,
    run: RunOptions,  # the options train and compare share (cli_options.py)
) -> None:
    """The lecture end to end: train each model, test table, history figure, sample predictions."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table
    from seqlab.pipeline import compare as run_compare
    from seqlab.pipeline import prepare, pretrained_embeddings
    from seqlab.training.progress import ConsoleReporter

    from seqlab.evaluation.report import rich_table

    options = dict(run.model_options)
    for name in models:  # unknown names and options fail before the data is read
        build_model(name, **options)
    prepared = prepare(run.data, run.encoder, run.train_size, run.test_size)
    corpus = prepared.corpus
    _print_corpus(corpus)
    _print_summary(prepared.summary)
    matrix = pretrained_embeddings(run.embeddings, run.data, corpus, options["embedding_dim"], run.train_size,
                                   console.print)
    if matrix is not None:
        options["embedding_dim"] = matrix.dimension
    for name in models:
        console.print(summary_table(build_model(name, vocab_size=corpus.encoder.vocab_size, **options),
                                    run.encoder.maxlen))
    raw = None
    if baseline:
        from seqlab.data.sources import load_corpus

        raw = load_corpus(run.data)
        if run.train_size is not None or run.test_size is not None:
            raw = raw.subset(run.train_size, run.test_size, seed=0)  # the same texts prepare drew
    comparison = run_compare(
        models, corpus, run.training, out, reporter_for=lambda name: ConsoleReporter(console, name.upper()),
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
@takes_run_options
def train(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Argument(help=f"Model name: {', '.join(model_names())}.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory to write (default runs/MODEL).")] = None,
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = None,
    prepared: Annotated[Optional[Path], typer.Option(help="Train from a corpus made by `seqlab data prepare` (memory-mapped; encoder options come from it).")] = None,
    nproc: Annotated[int, typer.Option(help="Processes to train on, launched through torchrun (gloo on CPU, nccl on GPUs).")] = 1,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Multi-process runs: snapshot folder saved every epoch (and --checkpoint-steps); a run finding one resumes from it.")] = None,
    checkpoint_steps: Annotated[Optional[int], typer.Option(help="Multi-process runs: also snapshot every this many batches.")] = None,
    *,
    run: RunOptions,  # the options train and compare share (cli_options.py)
) -> None:
    """Train one model (on IMDb, your own data or a prepared corpus) and save its run directory; checkpoints as it goes."""
    from seqlab.models import build_model
    from seqlab.recipes import Recipe, resume as resume_run, train_recipe
    from seqlab.training import distributed
    from seqlab.training.progress import ConsoleReporter

    if nproc > 1 and not distributed.launched_by_torchrun():
        from seqlab.launch import relaunch_with_torchrun

        raise typer.Exit(relaunch_with_torchrun(nproc, sys.argv[1:]))

    def on_prepared(prepared):
        _print_corpus(prepared.corpus)
        _print_summary(prepared.summary)

    options, training = run.model_options, run.training
    if resume is not None:
        given = [f"--{name.replace('_', '-')}" if name != "model" else "MODEL" for name in ctx.params
                 if name != "resume" and ctx.get_parameter_source(name).name == "COMMANDLINE"]
        if given:
            raise ConfigError(f"--resume continues with the settings the run started with; drop {', '.join(given)}")
        _, result = resume_run(resume, ConsoleReporter(console, "resumed"), on_prepared, log=console.print)
    elif model is None:
        raise ConfigError(f"name a model to train ({', '.join(model_names())}), or give --resume RUN")
    elif prepared is not None or distributed.launched_by_torchrun():
        result = _train_distributed(model, options, training, prepared, run.archive, checkpoint, checkpoint_steps,
                                    run.encoder, run.train_size, run.test_size, out or Path("runs") / model)
    else:
        build_model(model, **options)
        recipe = Recipe(model=model, model_options=options, encoder=run.encoder, training=training, data=run.data,
                        train_size=run.train_size, test_size=run.test_size, checkpoint_every=checkpoint_every,
                        embeddings=run.embeddings)
        _, result = train_recipe(recipe, out or Path("runs") / model, ConsoleReporter(console, model.upper()),
                                 on_prepared, log=console.print)
    if result is not None:
        console.print(_results_table([result]))
        console.print(f"Saved run directory {result.run_directory}/")


def _train_distributed(model, options, training, prepared, archive, checkpoint, checkpoint_steps, encoder_config,
                       train_size, test_size, out):
    """One process of a torchrun run (or a run on a prepared corpus); returns the result on process 0 only."""
    from seqlab.models import build_model
    from seqlab.pipeline import prepare_imdb, train_model
    from seqlab.training import distributed
    from seqlab.training.progress import ConsoleReporter

    build_model(model, **options)
    main_process = distributed.is_main()

    def load_corpus():
        if prepared is not None:
            from seqlab.text.prepared import open_prepared

            return open_prepared(prepared)
        return prepare_imdb(archive, encoder_config, train_size, test_size)

    if not main_process:
        distributed.barrier()  # process 0 fills the tokenized-data cache first
    corpus = load_corpus()
    if main_process:
        distributed.barrier()
        _print_corpus(corpus)
    _, result = train_model(model, corpus, training, out, ConsoleReporter(console, model.upper()) if main_process else None,
                            checkpoint=checkpoint, checkpoint_steps=checkpoint_steps, **options)
    return result if main_process else None


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    archive: Archive = None,
    test_size: TestSize = None,
    precision: Precision = "float32",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data: Annotated[str, typer.Option(help="'imdb' (its test reviews), or a file/folder whose every text is tested.")] = default(DataSource, "data"),
    text_column: TextColumn = default(DataSource, "text_column"),
    label_column: LabelColumn = default(DataSource, "label_column"),
    replace_invalid: ReplaceInvalid = False,
) -> None:
    """Test a saved run on labelled texts (IMDb's test reviews by default), with the run's own encoder."""
    import numpy as np

    from seqlab.data.corpus import Corpus
    from seqlab.data.sources import load_evaluation_split
    from seqlab.predict import load

    predictor = load(run, precision=precision)
    source = data_source(data, None, text_column, label_column, replace_invalid, 0.2, archive)
    split = load_evaluation_split(source, predictor.label_names)
    if test_size is not None:
        split = Corpus("evaluation", split, split, predictor.label_names, "").subset(None, test_size, seed=0).test
    probs = predictor.predict_proba(split.texts)
    labels = split.labels
    predicted = probs.argmax(1)
    accuracy = float((predicted == labels).mean())
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1)).mean())
    recall = {name: float((predicted[labels == i] == i).mean()) if (labels == i).any() else None
              for i, name in enumerate(predictor.label_names)}
    result = {"run": str(run), "test_reviews": len(labels), "accuracy": accuracy, "loss": loss, "recall": recall}
    if json_output:
        console.print_json(json.dumps(result))
    else:
        console.print(f"{run}: test accuracy {accuracy:.4f}, test loss {loss:.4f} on {len(labels):,} texts")
        console.print("recall per class: " + ", ".join(f"{name} {value:.3f}" for name, value in recall.items()
                                                      if value is not None))


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
    precision: Precision = "float32",
    onnx: Onnx = False,
) -> None:
    """Classify reviews with a saved run."""
    from seqlab.predict import load

    predictor = load(run, backend="onnx" if onnx else "pytorch", precision=precision)
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
    max_features: MaxFeatures = default(EncoderConfig, "max_features"),
    maxlen: Maxlen = default(EncoderConfig, "maxlen"),
    embedding_dim: EmbeddingDim = None,
    hidden_size: HiddenSize = None,
    layers: Layers = None,
    pooling: Pooling = None,
    heads: Heads = None,
    ngrams: Ngrams = None,
) -> None:
    """A Keras-style summary of a model: layers, output shapes, parameters."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table

    console.print(summary_table(build_model(model, vocab_size=max_features, embedding_dim=embedding_dim,
                                            hidden_size=hidden_size, layers=layers, pooling=pooling, heads=heads,
                                            ngrams=ngrams),
                                maxlen))


@app.command()
def serve(
    runs: Annotated[list[str], typer.Argument(help="Run directories to serve, as PATH (named after its folder) or NAME=PATH.")],
    host: Annotated[str, typer.Option(help="Address to bind; the default accepts only this machine.")] = default(ServeConfig, "host"),
    port: Annotated[int, typer.Option(help="TCP port.")] = default(ServeConfig, "port"),
    onnx: Onnx = False,
    batching: Annotated[bool, typer.Option(help="Merge concurrent requests into one model call.")] = default(ServeConfig, "batching"),
    batch_window_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests after its first.")] = default(ServeConfig, "batch_window_ms"),
    max_batch_size: Annotated[int, typer.Option(help="Texts after which a batch stops collecting.")] = default(ServeConfig, "max_batch_size"),
    threads: Annotated[int, typer.Option(help="Threads for PyTorch / ONNX Runtime.")] = default(ServeConfig, "threads"),
    grpc_port: Annotated[Optional[int], typer.Option(help="Also serve the Open Inference Protocol over gRPC on this port (Triton uses 8001).")] = default(ServeConfig, "grpc_port"),
) -> None:
    """Serve run directories over HTTP: /v1/predict, /v1/explain, the Open Inference Protocol (/v2), a page at /."""
    from seqlab.serve.app import load_predictors, run_server

    config = ServeConfig(host=host, port=port, batching=batching, batch_window_ms=batch_window_ms,
                         max_batch_size=max_batch_size, threads=threads, grpc_port=grpc_port)
    predictors = load_predictors(runs, backend="onnx" if onnx else "pytorch", threads=threads)
    address = host if ':' not in host else f'[{host}]'
    where = f"http://{address}:{port}"
    grpc = f", gRPC on {address}:{grpc_port}" if grpc_port is not None else ""
    console.print(f"serving {', '.join(predictors)} on {where}/ (API docs at {where}/docs){grpc}; Ctrl-C stops")
    run_server(predictors, config)


def _explanation_text(explanation):
    """The review with each word's background coloured by its score (rich markup)."""
    from rich.text import Text

    labels = explanation.prediction.probabilities
    others = [label for label in labels if label != explanation.target]
    colours = {"positive": (22, 163, 74), "negative": (220, 38, 38)}
    toward = colours.get(explanation.target, (37, 99, 235))
    away = colours.get(others[0], (120, 120, 120)) if len(others) == 1 else (120, 120, 120)
    scale = max((abs(w.score) for w in explanation.words if w.read), default=0) or 1
    text, at = Text(), 0
    for word in explanation.words:
        text.append(explanation.text[at:word.start])
        if not word.read:
            text.append(word.text, style="dim strike")
        else:
            r, g, b = toward if word.score >= 0 else away
            strength = min(1.0, abs(word.score) / scale)
            mix = lambda channel: int(255 - (255 - channel) * strength * 0.8)  # noqa: E731 - blend toward white
            text.append(word.text, style=f"black on rgb({mix(r)},{mix(g)},{mix(b)})")
        at = word.end
    text.append(explanation.text[at:])
    return text


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    text: Annotated[str, typer.Argument(help="The review to explain ('-' reads it from standard input).")],
    method: Annotated[str, typer.Option(help="auto (attention weights if the model has them, else occlusion), "
                                             "attention, occlusion or integrated_gradients.")] = "auto",
    target: Annotated[Optional[str], typer.Option(help="Class the scores refer to (default: the predicted one).")] = None,
    top: Annotated[int, typer.Option(help="How many of the strongest words to list.")] = 8,
    json_output: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    onnx: Onnx = False,
) -> None:
    """Show which words of a review pushed the prediction, coloured by how much."""
    from seqlab.predict import load

    if text == "-":
        text = "\n".join(_read_stdin_lines(replace_invalid=False))
    explanation = load(run, backend="onnx" if onnx else "pytorch").explain(text, method=method, target=target)
    if json_output:
        print(json.dumps(explanation.to_dict(), ensure_ascii=False))
        return
    p = explanation.prediction
    console.print(f"[bold]{p.label}[/] ({p.probability:.4f}); {p.tokens} tokens read"
                  f"{', text cut' if p.truncated else ''}")
    console.print(f"Words are coloured by their {explanation.description}.")
    if explanation.words_cut:
        console.print(f"[dim]The first {explanation.words_cut} word(s) were cut off to fit maxlen (struck out): "
                      "the model never read them.[/]")
    console.print(_explanation_text(explanation))
    strongest = sorted((w for w in explanation.words if w.read), key=lambda w: abs(w.score), reverse=True)[:top]
    if strongest:
        table = Table(title=f"Strongest words for {explanation.target}")
        table.add_column("word")
        table.add_column("score", justify="right")
        for word in strongest:
            table.add_row(word.text, f"{word.score:+.4f}")
        console.print(table)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    format: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
) -> None:
    """Write RUN/model.onnx (dynamic batch and length), checked against PyTorch, for ONNX Runtime."""
    from seqlab.export import TOLERANCE, export_onnx

    result = export_onnx(run, format=format)
    outputs = "logits and attention" if result.attention else "logits"
    console.print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, {result.exporter} exporter, "
                  f"outputs {outputs}); largest probability difference from PyTorch "
                  f"{result.max_difference:.1e} (limit {TOLERANCE:.0e})")
    console.print(f"use it with `seqlab predict {run} --onnx ...` or `seqlab serve {run} --onnx`")


data_app = typer.Typer(no_args_is_help=True, help="Prepare corpora: tokenize once into memory-mapped arrays.")
app.add_typer(data_app, name="data")


@data_app.command("prepare")
def data_prepare(
    data: Annotated[Path, typer.Argument(help="The corpus: an IMDb archive (aclImdb_v1.tar.gz).")],
    out: Annotated[Path, typer.Option(help="Folder for the arrays, encoder.json and manifest.json.")],
    max_features: MaxFeatures = default(EncoderConfig, "max_features"),
    maxlen: Maxlen = default(EncoderConfig, "maxlen"),
    truncating: Truncating = default(EncoderConfig, "truncating"),
    padding: Padding = default(EncoderConfig, "padding"),
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
    prepare(sources, out, encoder_config(max_features, maxlen, truncating, padding), corpus.label_names,
            name=corpus.name, chunk_size=chunk_size, workers=workers,
            progress=lambda stage, done, total: console.print(f"{stage}: {done:,}/{total:,} texts", end="\r"))
    prepared = open_prepared(out)
    console.print(f"\nPrepared {len(prepared.train):,} training and {len(prepared.test):,} test texts "
                  f"({int(prepared.train.lengths.sum() + prepared.test.lengths.sum()):,} tokens) in {out} "
                  f"in {time.perf_counter() - started:.1f} s; train with `seqlab train MODEL --prepared {out}`")


def main() -> None:
    from seqlab.training.cpu import prepare_process

    prepare_process()  # before any kernel or thread: less memory held (see training/cpu.py)
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
