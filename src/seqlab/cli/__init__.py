"""The `seqlab` command: the typer app, its command table and `main`.

Each command lives in the module of its group (train.py, evaluate.py, predict.py, serve.py,
data.py, analysis.py): it parses, calls the Python API, prints. Heavy modules (torch, numpy,
matplotlib, fastapi) are imported inside the commands, so `seqlab --help` loads none of them.
"""

from __future__ import annotations

import functools
from typing import Annotated, Callable

import typer
from rich.markup import escape

from seqlab import __version__
from seqlab.cli import analysis, data, evaluate, predict, pretrain, serve, train
from seqlab.cli.exit_codes import EPILOG, ExitCode, exit_code
from seqlab.cli.output import errors
from seqlab.errors import SeqlabError

# A group's --help and completion flags, absent from the command line, default to None, and typer
# builds a pydantic validator (importing pydantic) to turn that None into None; their defaults given
# here as False, typer takes them as they are, so `seqlab COMMAND --help` imports no pydantic.
_FLAGS_UNSET = {"help": False, "install_completion": False, "show_completion": False}
app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False, epilog=EPILOG,
                  context_settings={"default_map": {**_FLAGS_UNSET, "data": _FLAGS_UNSET, "embeddings": _FLAGS_UNSET}})
data_app = typer.Typer(no_args_is_help=True, help="Prepare corpora: tokenize once into memory-mapped arrays.")
embeddings_app = typer.Typer(no_args_is_help=True, help="Pretrained word vectors.")

# (where, name, function) of every command, in the order `seqlab --help` lists them
COMMANDS: list[tuple[typer.Typer, str, Callable]] = [
    (app, "compare", train.compare),
    (app, "train", train.train),
    (app, "pretrain", pretrain.pretrain),
    (app, "evaluate", evaluate.evaluate),
    (app, "predict", predict.predict),
    (app, "summary", analysis.summary),
    (app, "serve", serve.serve),
    (app, "explain", predict.explain),
    (app, "export", serve.export),
    (app, "gradients", analysis.gradients),
    (data_app, "prepare", data.data_prepare),
    (embeddings_app, "word2vec", analysis.word2vec),
]


def _show_version(asked: bool) -> None:
    if asked:
        print(f"seqlab {__version__}")
        raise typer.Exit()


@app.callback()
def _seqlab(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_show_version,
                                          help="Print seqlab's version and exit.")] = False,
) -> None:
    """Sequence models for text classification: train, compare, evaluate, predict."""


def _as_a_command(command: Callable) -> Callable:
    """`command` as the seqlab command runs it: the process prepared first (training/cpu.py: less
    memory held; imported here, when a command runs, never for --help), and Ctrl-C told apart."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            from seqlab.training.cpu import prepare_process

            prepare_process()  # before any kernel or thread
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            errors.print("interrupted; runs already saved are complete, the one in progress was not written")
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    return run


for _where, _name, _command in COMMANDS:
    _where.command(_name)(_as_a_command(_command))
app.add_typer(data_app, name="data")
app.add_typer(embeddings_app, name="embeddings")


def main() -> None:
    """The `seqlab` entry point: errors seqlab raises end in a one-line message and their exit code."""
    try:
        app()
    except SeqlabError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}")  # the message's own brackets (seqlab[serve]) are text
        raise SystemExit(exit_code(error)) from None
