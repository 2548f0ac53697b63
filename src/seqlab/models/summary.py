"""A Keras-style model summary: layer, output shape, parameters."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from seqlab.models.base import SequenceClassifier, count_parameters


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if size is None else str(size) for size in shape) + ")"


def summary_table(model: SequenceClassifier, maxlen: int) -> Group:
    """The layer table, then the totals (and how they differ from Keras's, if they do)."""
    total = count_parameters(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines = [f" Total params: {total:,}", f" Trainable params: {trainable:,}", f" Non-trainable params: {total - trainable:,}"]
    note = model.keras_parameter_note()
    if note:
        lines.append(f" ({note})")
    table = Table(title=f'Model: "{model.name}"', title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output Shape")
    table.add_column("Param #", justify="right")
    for row in model.summary_rows(maxlen):
        table.add_row(f"{row.name} ({row.kind})", _shape(row.output_shape), f"{row.parameters:,}")
    return Group(table, Text("\n".join(lines) + "\n"))
