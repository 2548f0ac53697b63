"""`seqlab predict` and `seqlab explain`: classify reviews with a saved run, and show why."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from seqlab.cli.options import Onnx, Precision
from seqlab.cli.output import print_explanation, print_json, print_predictions
from seqlab.errors import DataError


def from_argv(text: str) -> str:
    """A text given on the command line as Unicode: bytes that were not UTF-8 (which Python keeps as
    lone surrogates) become U+FFFD, as the HTTP boundary does, so nothing invalid reaches the output."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_stdin_lines(replace_invalid: bool) -> list[str]:
    texts = []
    for number, raw in enumerate(sys.stdin.buffer.read().splitlines(), start=1):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            if not replace_invalid:
                raise DataError(f"line {number} of standard input is not UTF-8 ({error.reason} at byte {error.start}); "
                                "fix the encoding or pass --replace-invalid to replace bad bytes with U+FFFD") from None
            texts.append(raw.decode("utf-8", errors="replace"))
    return texts


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
    else:
        texts = [from_argv(text) for text in texts]
    predictions = predictor.predict(texts)
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
