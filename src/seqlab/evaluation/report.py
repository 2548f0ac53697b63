"""The comparison as a report: one table (terminal, Markdown, CSV), figures, and a
self-contained report.html (figures embedded as base64 PNG, no network needed).

Everything here reads saved results (dicts as in results.json); nothing trains or encodes.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from seqlab.evaluation.figures import accuracy_against_time, history_grid, roc_curves
from seqlab.files import write_text

COLUMNS = ("model", "parameters", "s/epoch", "train s", "best val accuracy", "test accuracy", "test loss",
           "ROC-AUC", "F1")


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def table_rows(results: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row of strings per result; failed models say so, the baseline has no epochs."""
    rows = []
    for r in results:
        if r.get("error"):
            rows.append([r["name"], "failed", r["error"].splitlines()[0][:80]] + [""] * (len(COLUMNS) - 3))
            continue
        history, test = r.get("history") or {}, r["test"]
        seconds = history.get("seconds") or []
        name = r["name"] + (" (baseline)" if r.get("baseline") else "")
        rows.append([
            name, f"{r['parameters']:,}",
            _number(sorted(seconds)[len(seconds) // 2], 1) if seconds else "-",
            _number(r["train_seconds"], 1),
            _number(max(history["val_accuracy"])) if history.get("val_accuracy") else "-",
            _number(test["accuracy"]), _number(test.get("loss")), _number(test.get("roc_auc")), _number(test.get("f1")),
        ])
    return rows


def markdown(results: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines) + "\n"


def csv_text(results: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(table_rows(results))
    return buffer.getvalue()


def rich_table(results: Sequence[Mapping[str, Any]], title: str = "Test results"):
    from rich.table import Table

    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in table_rows(results):
        table.add_row(*row)
    return table


def _embedded_image(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def make_figures(results: Sequence[Mapping[str, Any]], out: Path) -> dict[str, Path]:
    """History grid (trained models), test accuracy against training time, ROC curves."""
    ok = [r for r in results if not r.get("error")]
    figures: dict[str, Path] = {}
    histories = {r["name"]: r["history"] for r in ok if r.get("history")}
    if histories:
        figures["Training history"] = history_grid(histories, out / "sequence_models_history.png")
    if ok:
        figures["Test accuracy against training time"] = accuracy_against_time(
            {r["name"]: (r["train_seconds"], r["test"]["accuracy"]) for r in ok}, out / "accuracy_vs_time.png")
    curves = {r["name"]: r["roc"] for r in ok if r.get("roc")}
    if curves:
        figures["ROC curves on the test reviews"] = roc_curves(
            curves, {name: r["test"].get("roc_auc") for name, r in ((r["name"], r) for r in ok)}, out / "roc_curves.png")
    return figures


def write_report(
    results: Sequence[Mapping[str, Any]],
    out: str | Path,
    title: str = "seqlab comparison",
    samples: Sequence[Mapping[str, Any]] = (),
    extra_figures: Mapping[str, Path] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write results.md, results.csv, the figures and report.html into `out`; returns report.html's path."""
    out = Path(out)
    write_text(out / "results.md", markdown(results))
    write_text(out / "results.csv", csv_text(results))
    figures = {**make_figures(results, out), **(extra_figures or {})}
    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>Results</h2>", _html_table(results)]
    for caption, path in figures.items():
        parts.append(f"<h2>{html.escape(caption)}</h2><figure>{_embedded_image(path)}</figure>")
    if samples:
        parts.append("<h2>Predictions on random test reviews</h2>" + _samples_html(samples))
    parts.append("<h2>Configurations</h2>")
    for r in results:
        config = {key: r.get(key) for key in ("config", "embeddings", "best_epoch") if r.get(key) is not None}
        parts.append(f"<h3>{html.escape(r['name'])}</h3><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    if settings:
        parts.append(f"<h3>Data and training settings</h3><pre>{html.escape(json.dumps(settings, indent=2))}</pre>")
    document = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )
    write_text(out / "report.html", document)
    return out / "report.html"


def _html_table(results: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table_rows(results))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _samples_html(samples: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for sample in samples:
        verdicts = ", ".join(f"{html.escape(name)}: {html.escape(label)} ({p:.3f})"
                             for name, (label, p) in sample["predictions"].items())
        items.append(f"<li><p class=\"review\">{html.escape(sample['text'][:600])}</p>"
                     f"<p>true: <b>{html.escape(sample['true_label'])}</b> — {verdicts}</p></li>")
    return "<ol>" + "".join(items) + "</ol>"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; } img { max-width: 100%; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; } .review { color: #555; font-style: italic; }
"""
