"""What the commands print: the consoles, tables and coloured texts (rich only; no torch)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def print_json(data) -> None:
    """One JSON document on its own line of standard output: strict JSON (non-finite numbers as null)."""
    from seqlab.jsonfile import dumps

    print(dumps(data), flush=True)


def print_summary(summary) -> None:
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


def print_corpus(corpus) -> None:
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


def results_table(results) -> Table:
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


def print_samples(samples) -> None:
    console.print("[bold]Predictions on random test reviews[/]")
    for number, sample in enumerate(samples, start=1):
        verdicts = "  ".join(f"{name.upper()}: {label} ({p:.3f})" for name, (label, p) in sample.predictions.items())
        console.print(f"{number}. [italic]{sample.text[:100]}[/]\n   true: {sample.true_label}  {verdicts}")


def explanation_text(explanation):
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


def print_explanation(explanation, top: int) -> None:
    """The prediction, the coloured review and a table of the `top` strongest words."""
    p = explanation.prediction
    console.print(f"[bold]{p.label}[/] ({p.probability:.4f}); {p.tokens} tokens read"
                  f"{', text cut' if p.truncated else ''}")
    console.print(f"Words are coloured by their {explanation.description}.")
    if explanation.words_cut:
        console.print(f"[dim]The first {explanation.words_cut} word(s) were cut off to fit maxlen (struck out): "
                      "the model never read them.[/]")
    console.print(explanation_text(explanation))
    strongest = sorted((w for w in explanation.words if w.read), key=lambda w: abs(w.score), reverse=True)[:top]
    if strongest:
        table = Table(title=f"Strongest words for {explanation.target}")
        table.add_column("word")
        table.add_column("score", justify="right")
        for word in strongest:
            table.add_row(word.text, f"{word.score:+.4f}")
        console.print(table)


def print_predictions(texts, predictions) -> None:
    table = Table()
    top = any(p.top is not None for p in predictions)
    for column in ("review", "predicted", "probability", "tokens", *(("top",) if top else ())):
        table.add_column(column, max_width=70 if column == "review" else None)
    for text, p in zip(texts, predictions):
        kept = (", ".join(f"{label} {value:.4f}" for label, value in p.top),) if top else ()
        table.add_row(text[:200], p.label, f"{p.probability:.4f}", f"{p.tokens}{' (cut)' if p.truncated else ''}", *kept)
    console.print(table)


def prediction_line(prediction) -> str:
    """`label<TAB>probability`, or with top-k/threshold each class kept and its probability, tab-separated."""
    kept = prediction.top if prediction.top is not None else ((prediction.label, prediction.probability),)
    return "\t".join(f"{label}\t{value:.6f}" for label, value in kept)
