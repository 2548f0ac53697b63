"""Building and loading the compiled CPU loops (models/native.py)."""

import os
import sys
import time

import pytest
import torch

from seqlab.models import native

# Built wherever the tests run (a failed build fails them); SEQLAB_NATIVE=0 runs the suite on the
# fallback path, and then the tests of the compiled loops say they were skipped.
needs_native = pytest.mark.skipif(native.switched_off(), reason="SEQLAB_NATIVE=0 switches the compiled loops off")


@needs_native
def test_the_loops_are_built_here():
    # Not a silent fallback: on Linux with a C++ compiler (as in CI) the compiled loops are the ones used.
    assert sys.platform.startswith("linux")
    built = native.kernels()
    assert built is not None
    assert {"tanh_forward", "tanh_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "lstm_folded",
            "gru_folded"} <= set(dir(built))


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(native.SWITCH, "0")
    assert native.kernels() is None


def test_a_failed_build_says_why_and_leaves_pytorchs_kernels(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    def fail(*args, **kwargs):
        raise RuntimeError("Error building extension 'seqlab_cells':\n[1/2] c++ -O3 cells.cpp\n"
                           "/bin/sh: 1: c++: not found\nninja: build stopped: subcommand failed.")

    monkeypatch.setattr(cpp_extension, "load", fail)
    monkeypatch.setattr(cpp_extension, "_get_build_directory", lambda name, verbose: str(tmp_path))
    with pytest.warns(RuntimeWarning, match=r"not available \(RuntimeError: /bin/sh: 1: c\+\+: not found\).*"
                                            r"PyTorch's kernels.*C\+\+ compiler.*SEQLAB_NATIVE=0"):
        assert native._build("seqlab_cells_test") is None


def test_a_lock_left_by_a_killed_build_is_removed_and_a_fresh_one_kept(tmp_path):
    stale, fresh = tmp_path / "stale", tmp_path / "fresh"
    stale.touch(), fresh.touch()
    old = time.time() - native.STALE_LOCK_SECONDS - 60
    os.utime(stale, (old, old))
    native._remove_stale_lock(stale)
    native._remove_stale_lock(fresh)
    native._remove_stale_lock(tmp_path / "absent")
    assert not stale.exists() and fresh.exists()


def test_each_source_gets_its_own_build_name():
    name = native.extension_name()
    assert name.startswith("seqlab_cells_") and len(name) == len("seqlab_cells_") + 12


@needs_native
def test_the_loops_check_what_they_are_given():
    built = native.kernels()
    gates = torch.zeros(3, 2, 8)
    with pytest.raises(RuntimeError, match="gates must be a contiguous float32 CPU tensor of 3 dimensions"):
        built.lstm_forward(gates.double(), torch.zeros(2, 8))
    with pytest.raises(RuntimeError, match=r"recurrent_t must have shape \[2, 8\]"):
        built.lstm_forward(gates, torch.zeros(3, 8))
    with pytest.raises(RuntimeError, match="gates must have a multiple of 4 features; got 10"):
        built.lstm_forward(torch.zeros(3, 2, 10), torch.zeros(2, 8))
    activations, unit = torch.zeros(4, 3, 32), torch.zeros(4, 3, 8)
    with pytest.raises(RuntimeError, match=r"grad_states must have shape \[4, 3, 8\]; got \[1, 1, 1\]"):
        built.lstm_backward(torch.zeros(1, 1, 1), activations, unit, unit, torch.zeros(32, 8))
    with pytest.raises(RuntimeError, match=r"recurrent must have shape \[24, 8\]"):
        built.gru_backward(unit, torch.zeros(4, 3, 24), unit, unit, torch.zeros(32, 8))


@needs_native
def test_the_simple_rnns_loops_check_what_they_are_given():
    built = native.kernels()
    with pytest.raises(RuntimeError, match="states must be a contiguous float32 CPU tensor of 3 dimensions"):
        built.tanh_forward(torch.zeros(3, 2, 8).double(), torch.zeros(8, 8))
    with pytest.raises(RuntimeError, match=r"recurrent_t must have shape \[8, 8\]"):
        built.tanh_forward(torch.zeros(3, 2, 8), torch.zeros(4, 8))
    with pytest.raises(RuntimeError, match=r"slopes must have shape \[3, 2, 8\]"):
        built.tanh_backward(torch.zeros(3, 2, 8), torch.zeros(3, 1, 8), torch.zeros(8, 8))
