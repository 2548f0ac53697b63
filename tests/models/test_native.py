"""Building and loading the compiled CPU loops (models/native.py)."""

import sys

import pytest
import torch

from seqlab.models import native


def test_the_loops_are_built_here():
    # Not a silent fallback: on Linux with a C++ compiler (as in CI) the compiled loops are the ones used.
    assert sys.platform.startswith("linux")
    built = native.kernels()
    assert built is not None and {"lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "lstm_folded", "gru_folded"} <= set(dir(built))


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(native.SWITCH, "0")
    assert native.kernels() is None


def test_a_failed_build_says_why_and_leaves_pytorchs_kernels(monkeypatch):
    from torch.utils import cpp_extension

    def fail(*args, **kwargs):
        raise RuntimeError("Error building extension 'seqlab_cells':\ncells.cpp:1: error: no compiler here\nbuild stopped")

    monkeypatch.setattr(cpp_extension, "load", fail)
    with pytest.warns(RuntimeWarning, match="not available .*cells.cpp:1: error: no compiler here.*PyTorch's kernels"):
        assert native._build() is None


def test_the_loops_check_what_they_are_given():
    built = native.kernels()
    gates = torch.zeros(3, 2, 8)
    with pytest.raises(RuntimeError, match="gates must be a contiguous float32 CPU tensor of 3 dimensions"):
        built.lstm_forward(gates.double(), torch.zeros(2, 8))
    with pytest.raises(RuntimeError, match="recurrent_t must be \\(hidden, 4 \\* hidden\\)"):
        built.lstm_forward(gates, torch.zeros(3, 8))
