"""`seqlab predict` and `seqlab explain`: classify reviews with a saved run, and show why."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from typing import IO, Annotated, Iterator, Optional

import typer

from seqlab.cli.options import Onnx, Precision
from seqlab.cli.output import print_explanation, print_json, print_predictions, prediction_line
from seqlab.errors import ConfigError, DataError

FILE_BATCH = 512  # lines of --file classified and printed at a time


def _lines(stream: IO[bytes], where: str, replace_invalid: bool) -> Iterator[str]:
    """Each line of `stream` (without its line break), decoded as UTF-8."""
    for number, raw in enumerate(stream, start=1):
        raw = raw.rstrip(b"\r\n")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if not replace_invalid:
                raise DataError(f"line {number} of {where} is not UTF-8 ({error.reason} at byte {error.start}); "
                                "fix the encoding or pass --replace-invalid to replace bad bytes with U+FFFD") from None
            yield raw.decode("utf-8", errors="replace")


def from_argv(text: str) -> str:
    """A text given on the command line as Unicode: bytes that were not UTF-8 (which Python keeps as
    lone surrogates) become U+FFFD, as the HTTP boundary does, so nothing invalid reaches the output."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_stdin_lines(replace_invalid: bool) -> list[str]:
    return list(_lines(sys.stdin.buffer, "standard input", replace_invalid))


def _predict_file(predictor, path: Path, json_output: bool, top_k: int | None, threshold: float | None) -> None:
    """One output line per line of `path` ('-': standard input), FILE_BATCH lines at a time; bytes
    that are not UTF-8 are read as U+FFFD."""
    if str(path) != "-" and not path.is_file():
        raise DataError(f"no file at {path}; --file takes a text file with one text per line, or - for standard input")
    with open(path, "rb") if str(path) != "-" else nullcontext(sys.stdin.buffer) as stream:
        lines = _lines(stream, "standard input" if str(path) == "-" else str(path), replace_invalid=True)
        while batch := list(islice(lines, FILE_BATCH)):
            for text, prediction in zip(batch, predictor.predict(batch, top_k=top_k, threshold=threshold)):
                if json_output:
                    print_json({"text": text, **prediction.to_dict()})
                else:
                    print(prediction_line(prediction))
            sys.stdout.flush()


def predict(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Reviews to classify; none or '-' reads one review per line from standard input.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="A text file, one text per line ('-': standard input), classified in batches: one output line per text, bytes that are not UTF-8 replaced.")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Multi-class runs: the K most probable classes of each text.")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Multi-class runs: only classes of at least this probability.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object per review.")] = False,
    replace_invalid: Annotated[bool, typer.Option(help="Replace bytes that are not UTF-8 instead of stopping.")] = False,
    precision: Precision = "float32",
    onnx: Onnx = False,
) -> None:
    """Classify reviews with a saved run."""
    from seqlab.predict import check_top, load

    if file is not None and texts:
        raise ConfigError("give texts or --file, not both")
    predictor = load(run, backend="onnx" if onnx else "pytorch", precision=precision)
    check_top(predictor.label_names, top_k, threshold)  # before reading any input
    if file is not None:
        _predict_file(predictor, file, json_output, top_k, threshold)
        return
    if not texts or texts == ["-"]:
        texts = _read_stdin_lines(replace_invalid)
    else:
        texts = [from_argv(text) for text in texts]
    predictions = predictor.predict(texts, top_k=top_k, threshold=threshold)
    if json_output:
        for text, prediction in zip(texts, predictions):
            print_json({"text": text, **prediction.to_dict()})
        return
    print_predictions(texts, predictions)


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
    from seqlab.explain import explain as explain_prediction
    from seqlab.predict import load

    if text == "-":
        text = "\n".join(_read_stdin_lines(replace_invalid=False))
    text = from_argv(text)
    explanation = explain_prediction(load(run, backend="onnx" if onnx else "pytorch"), text, method=method, target=target)
    if json_output:
        print_json(explanation.to_dict())
        return
    print_explanation(explanation, top)
