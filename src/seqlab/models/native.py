"""seqlab's compiled CPU loops (csrc/cells.cpp): built once per machine, on first use.

A recurrent step is one small matrix product and a few element-wise passes. PyTorch's CPU
kernels spend most of an LSTM's or GRU's time around them (dispatch, one pass per operation,
oneDNN's bookkeeping); csrc/cells.cpp does each step as the product and one fused pass.
torch.utils.cpp_extension compiles it with the machine's C++ compiler (~30 s, once; kept in
torch's extension cache, rebuilt when the source or PyTorch changes). `make setup` builds it
ahead (`native.main()`).

Where it cannot be built (no compiler or ninja, another platform) or SEQLAB_NATIVE=0 is set,
`kernels()` returns None, says why once, and the models use PyTorch's kernels and
TorchScript loops instead: the same results, slower.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

import torch

SOURCE = Path(__file__).with_name("csrc") / "cells.cpp"
NAME = "seqlab_cells"
SWITCH = "SEQLAB_NATIVE"  # "0" turns the compiled loops off (e.g. to compare against PyTorch's kernels)

_loaded: dict[str, ModuleType | None] = {}
_loading = threading.Lock()  # the shares of a batch ask at once


def kernels() -> ModuleType | None:
    """The compiled loops, or None where they cannot be used (then PyTorch's own kernels serve)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    if NAME in _loaded:
        return _loaded[NAME]
    with _loading:
        if NAME not in _loaded:
            _loaded[NAME] = _build()
        return _loaded[NAME]


def compiler_flags() -> list[str]:
    """Optimised for this machine's vector width, as PyTorch's own kernels are: ATen's vector
    types pick their AVX-512 or AVX2 code by these macros, and plain C++ without them."""
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", "DEFAULT", ...
    flags = ["-O3"]
    if capability == "AVX512":
        flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-DCPU_CAPABILITY_AVX512",
                  "-DCPU_CAPABILITY=AVX512"]
    elif capability == "AVX2":
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"]
    return flags


def _build() -> ModuleType | None:
    if not sys.platform.startswith("linux"):
        return _unavailable(f"built only on Linux here (this is {sys.platform})")
    try:
        from torch.utils import cpp_extension

        with warnings.catch_warnings(), _ninja_on_path():
            warnings.simplefilter("ignore")  # its notes on compiler versions
            return cpp_extension.load(NAME, [str(SOURCE)], extra_cflags=compiler_flags(), verbose=False)
    except Exception as error:  # noqa: BLE001 - no compiler, no ninja, a failed build: PyTorch's kernels serve
        lines = str(error).strip().splitlines() or [""]
        first_error = next((line for line in lines if "error:" in line), lines[-1])
        return _unavailable(f"{type(error).__name__}: {first_error.strip()}")


@contextmanager
def _ninja_on_path() -> Iterator[None]:
    """PyTorch runs `ninja` from PATH; the one pip installed beside seqlab is not there unless the
    environment is activated, so its folder joins PATH while building."""
    previous = os.environ.get("PATH", "")
    try:
        import ninja

        if shutil.which("ninja") is None:
            os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, previous])
    except ImportError:
        pass
    try:
        yield
    finally:
        os.environ["PATH"] = previous


def _unavailable(reason: str) -> None:
    warnings.warn(f"seqlab's compiled CPU loops are not available ({reason}); "
                  "using PyTorch's kernels, which are slower on a CPU", RuntimeWarning, stacklevel=3)
    return None


def main() -> int:
    """Build now (as `make setup` does) and say how it went."""
    started = time.perf_counter()
    built = kernels()
    if built is None:
        print("seqlab's compiled CPU loops: not available (see the warning above); PyTorch's kernels will serve")
        return 0
    print(f"seqlab's compiled CPU loops: ready ({time.perf_counter() - started:.1f} s) in {built.__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
