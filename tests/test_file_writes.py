"""Files seqlab writes (seqlab/files.py): atomic, and with the mode the umask gives a new file."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import safetensors.torch
import torch

from seqlab.files import atomic_directory, atomic_path, write_json
from seqlab.runs import save_run


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask_even_where_the_writer_makes_a_private_file(tmp_path, mask, expected):
    with umask(mask):
        with atomic_path(tmp_path / "weights.safetensors") as temporary:
            safetensors.torch.save_file({"w": torch.zeros(2)}, temporary)  # safetensors writes 0600 itself
        write_json(tmp_path / "config.json", {"a": 1})
        with atomic_directory(tmp_path / "run") as staging:
            safetensors.torch.save_file({"w": torch.zeros(2)}, staging / "model.safetensors")
    assert mode(tmp_path / "weights.safetensors") == expected
    assert mode(tmp_path / "config.json") == expected
    assert mode(tmp_path / "run" / "model.safetensors") == expected
    assert mode(tmp_path / "run") == expected | (0o111 & ~mask)  # a directory: searchable where readable


def test_a_saved_run_is_readable_by_others_under_umask_022(synthetic_run, tmp_path):
    from seqlab.runs import load_run

    run = load_run(synthetic_run)
    with umask(0o022):
        saved = save_run(tmp_path / "run", run.model, run.encoder, run.label_names, training={}, history=run.history,
                         metrics=run.metrics)
    for name in ("model.safetensors", "config.json"):
        assert mode(saved / name) == 0o644, name
    assert mode(saved) == 0o755
