"""`seqlab compare` and `seqlab train`: train models on a corpus and save their runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from seqlab.cli.exit_codes import ExitCode
from seqlab.cli.options import CheckpointEvery, Resume, ResumeComparison, RunOptions, takes_run_options
from seqlab.cli.output import console, print_corpus, print_samples, print_summary, results_table
from seqlab.errors import ConfigError
from seqlab.models.names import model_names


@takes_run_options
def compare(
    models: Annotated[list[str], typer.Argument(help=f"Models to train and compare: {', '.join(model_names())}.")],
    out: Annotated[Path, typer.Option(help="Folder for run directories, figures, results and report.html.")] = Path("runs"),
    baseline: Annotated[bool, typer.Option(help="Add the reference rows: TF-IDF (1-2-grams) + logistic regression, NB-LR and NBSVM.")] = True,
    gradient_steps: Annotated[int, typer.Option(help="Time steps of the gradient-per-step figure (0: none).")] = 100,
    resume: ResumeComparison = False,
    checkpoint_every: CheckpointEvery = 0,
    *,
    run: RunOptions,  # the options train and compare share (options.py)
) -> None:
    """The lecture end to end: train each model, test table, history figure, sample predictions."""
    from seqlab.models import build_model
    from seqlab.models.summary import summary_table
    from seqlab.pipeline import compare as run_compare
    from seqlab.pipeline import check_outputs, prepare
    from seqlab.recipes import pretrained_embeddings
    from seqlab.training.progress import ConsoleReporter

    from seqlab.evaluation.report import rich_table

    options = dict(run.model_options)
    for name in models:  # unknown names and options fail before the data is read
        build_model(name, **options)
    check_outputs(out, run.data)  # a read-only --out or cache fails here, before the data is read
    prepared = prepare(run.data, run.encoder, run.train_size, run.test_size)
    corpus = prepared.corpus
    print_corpus(corpus)
    print_summary(prepared.summary)
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

        raw = load_corpus(run.data, run.train_size, run.test_size)  # the same texts prepare drew
    comparison = run_compare(
        models, corpus, run.training, out, reporter_for=lambda name: ConsoleReporter(console, name.upper()),
        on_result=lambda r: console.print(f"{r.name.upper()}: test accuracy {r.test['accuracy']:.4f}, test loss "
                                          f"{r.test['loss']:.4f}\n" if not r.error else f"[red]{r.name} failed:[/] {r.error}"),
        embeddings=matrix, baseline_corpus=raw, gradient_steps=gradient_steps or None, resume=resume,
        checkpoint_every=checkpoint_every, fingerprint=prepared.fingerprint, **options,
    )
    rows = [r.to_dict() for r in comparison.results]
    if comparison.baselines:
        from dataclasses import asdict

        rows.extend({**asdict(baseline), "baseline": True} for baseline in comparison.baselines)
    console.print(rich_table(rows))
    if comparison.samples:
        print_samples(comparison.samples)
    console.print(f"Runs, figures, results.json/.md/.csv and {comparison.report} are in {comparison.directory}/")
    if any(r.error for r in comparison.results):
        raise typer.Exit(ExitCode.FAILED)


@takes_run_options
def train(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Argument(help=f"Model name: {', '.join(model_names())}.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory to write (default runs/MODEL).")] = None,
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = None,
    prepared: Annotated[Optional[Path], typer.Option(help="Train from a corpus made by `seqlab data prepare` (memory-mapped; encoder options come from it).")] = None,
    nproc: Annotated[int, typer.Option(help="Processes to train on, launched through torchrun (gloo on CPU, nccl on GPUs).")] = 1,
    init_from: Annotated[Optional[Path], typer.Option(help="Fine-tune: start from the body of this `seqlab pretrain` run (cell, sizes and word vectors follow it).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(hidden=True)] = None,  # gone: refused below, naming the way now
    checkpoint_steps: Annotated[Optional[int], typer.Option(hidden=True)] = None,  # renamed --checkpoint-every
    *,
    run: RunOptions,  # the options train and compare share (options.py)
) -> None:
    """Train one model (on IMDb, your own data or a prepared corpus; 1 or N processes), save its run; checkpoints as it goes."""
    from seqlab.models import build_model
    from seqlab.recipes import Recipe, prepared_data, resume as resume_run, train_recipe
    from seqlab.training import distributed
    from seqlab.training.progress import ConsoleReporter

    if checkpoint is not None:
        raise ConfigError("--checkpoint is gone: checkpoints live beside the run in OUT.checkpoint/ (every epoch, "
                          "and every --checkpoint-every N batches); resume with `seqlab train --resume OUT`")
    if checkpoint_steps is not None:
        raise ConfigError(f"--checkpoint-steps is now --checkpoint-every: pass --checkpoint-every {checkpoint_steps}")
    if nproc > 1 and not distributed.launched_by_torchrun():
        from seqlab.launch import relaunch_with_torchrun

        raise typer.Exit(relaunch_with_torchrun(nproc, sys.argv[1:]))

    def on_prepared(prepared):
        print_corpus(prepared.corpus)
        print_summary(prepared.summary)

    if resume is not None:
        given = [f"--{name.replace('_', '-')}" if name != "model" else "MODEL" for name in ctx.params
                 if name not in ("resume", "nproc") and getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]  # typer's own click: compare by name
        if given:
            raise ConfigError(f"--resume continues with the settings the run started with; drop {', '.join(given)}")
        _, result = resume_run(resume, ConsoleReporter(console, "resumed"), on_prepared, log=console.print)
    elif model is None:
        raise ConfigError(f"name a model to train ({', '.join(model_names())}), or give --resume RUN")
    else:
        build_model(model, **run.model_options)
        data = run.data if prepared is None else prepared_data(prepared, run.data)
        recipe = Recipe(model=model, model_options=run.model_options, encoder=run.encoder, training=run.training,
                        data=data, train_size=run.train_size, test_size=run.test_size,
                        checkpoint_every=checkpoint_every, embeddings=run.embeddings,
                        init_from=str(init_from) if init_from is not None else None)
        _, result = train_recipe(recipe, out or Path("runs") / model, ConsoleReporter(console, model.upper()),
                                 on_prepared, log=console.print)
    if distributed.is_main():
        console.print(results_table([result]))
        console.print(f"Saved run directory {result.run_directory}/")
