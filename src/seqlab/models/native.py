"""seqlab's compiled CPU loops (csrc/cells.cpp): built once per machine, on first use.

A recurrent step is one small matrix product and a few element-wise passes. PyTorch's CPU
kernels spend most of an LSTM's or GRU's time around them (dispatch, one pass per operation,
oneDNN's bookkeeping); csrc/cells.cpp does each step as the product and one fused pass.
torch.utils.cpp_extension compiles it with the machine's C++ compiler and Python's headers
(once; kept in torch's extension cache under a name made from the source and flags).
`make setup` builds it ahead (`native.main()`).

Where it cannot be built (no compiler or ninja, another platform) or SEQLAB_NATIVE=0 is set,
`kernels()` returns None, says why once, and the LSTM and GRU run PyTorch's own kernels
instead (models/kernels.py): the same results, slower.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
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

SOURCE = Path(__file__).with_name("csrc") / "cells.cpp"  # includes csrc/product.h
SWITCH = "SEQLAB_NATIVE"  # "0" turns the compiled loops off (e.g. to compare against PyTorch's kernels)
STALE_LOCK_SECONDS = 600  # a build lock this old was left by a killed build (far longer than a build takes)

_loaded: dict[str, ModuleType | None] = {}
_loading = threading.Lock()  # the shares of a batch ask at once


def switched_off() -> bool:
    return os.environ.get(SWITCH, "1") == "0"


def kernels() -> ModuleType | None:
    """The compiled loops, or None where they cannot be used (then PyTorch's own kernels serve)."""
    if switched_off():
        return None
    name = extension_name()
    if name in _loaded:
        return _loaded[name]
    with _loading:
        if name not in _loaded:
            _loaded[name] = _build(name)
        return _loaded[name]


def loaded() -> ModuleType:
    """The compiled loops, for code that models/kernels.py sent to them (its plan found them built)."""
    built = kernels()
    if built is None:
        raise RuntimeError("seqlab's compiled CPU loops are not available: models/kernels.py runs PyTorch's kernels then")
    return built


@functools.cache
def extension_name() -> str:
    """One name per source and flags: checkouts with different loops keep their own builds."""
    sources = b"".join(path.read_bytes() for path in sorted(SOURCE.parent.iterdir()) if path.suffix in (".cpp", ".h"))
    digest = hashlib.sha256(sources + " ".join(compiler_flags()).encode()).hexdigest()
    return f"seqlab_cells_{digest[:12]}"


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


def _build(name: str) -> ModuleType | None:
    if not sys.platform.startswith("linux"):
        _unavailable(f"built only on Linux here (this is {sys.platform})")
        return None
    try:
        from torch.utils import cpp_extension

        directory = Path(cpp_extension._get_build_directory(name, verbose=False))
        _remove_stale_lock(directory / "lock")
        if not any(directory.glob("*.so")):
            print("seqlab: building its compiled CPU loops (~30 s, once per machine)", file=sys.stderr, flush=True)
        with _ninja_on_path(), _quiet(logging.getLogger(cpp_extension.__name__)):
            return cpp_extension.load(name, [str(SOURCE)], extra_cflags=compiler_flags(), verbose=False)
    except Exception as error:  # noqa: BLE001 - no compiler, no ninja, a failed build: PyTorch's kernels serve
        _unavailable(f"{type(error).__name__}: {_first_cause(str(error))}")
        return None


def _first_cause(message: str) -> str:
    """The line of a build's output that says what went wrong (a compiler error, a missing program)."""
    lines = [line.strip() for line in message.strip().splitlines()] or [""]
    causes = [line for line in lines if re.search(r"error:|not found|No such file|command not found", line)]
    return (causes or lines[-1:])[0]


def _remove_stale_lock(lock: Path) -> None:
    """PyTorch's build lock outlives a build killed outright (out of memory, kill -9), and every later
    build would wait for it forever."""
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def _ninja_on_path() -> Iterator[None]:
    """PyTorch runs `ninja` from PATH; the one pip installed beside seqlab is not there unless the
    environment is activated, so its folder joins PATH while building."""
    if shutil.which("ninja") is not None:
        yield
        return
    try:
        import ninja
    except ImportError:
        yield
        return
    previous = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(part for part in (ninja.BIN_DIR, previous) if part)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = previous


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """PyTorch's build logs notes on compiler versions; the result (or warning) is what matters."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _unavailable(reason: str) -> None:
    warnings.warn(f"seqlab's compiled CPU loops are not available ({reason}); using PyTorch's kernels, which "
                  f"are slower on a CPU. They need a C++ compiler and Python's headers; {SWITCH}=0 skips them.",
                  RuntimeWarning, stacklevel=4)
    return None


def main() -> int:
    """Build now (as `make setup` does) and say how it went."""
    started = time.perf_counter()
    built = kernels()
    if built is None:
        print("seqlab's compiled CPU loops: not available (see above); PyTorch's kernels will serve")
        return 0
    print(f"seqlab's compiled CPU loops: ready ({time.perf_counter() - started:.1f} s) in {built.__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
