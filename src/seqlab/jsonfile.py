"""JSON in and out, the one way seqlab does it.

Reading: the files seqlab wrote (run directories, checkpoints, caches, manifests) come back
through `read_json`: a regular file only (a link to /dev/zero or a FIFO is refused, never read
unbounded), at most `limit` bytes, UTF-8, nested no deeper than the parser can go, and of the
expected shape (`check` names the key and the kind it should have). Every failure is one
error of the caller's kind naming the file and what to do.

Writing: `dumps` is the one serialiser of what seqlab prints or saves as JSON: strict JSON
(allow_nan=False semantics), with non-finite floats written as null, so no output of seqlab
is ever invalid JSON.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Callable

from seqlab.errors import RunError, SeqlabError

MAX_BYTES = 64 << 20  # the largest JSON file seqlab reads back (history, checkpoint state and tokenizers are far smaller)


def finite(value: Any) -> Any:
    """`value` with every float that is not finite (nan, inf) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(data: Any, indent: int | None = None) -> str:
    """Strict JSON: non-finite floats become null; never NaN or Infinity, which JSON lacks."""
    return json.dumps(finite(data), indent=indent, ensure_ascii=False, allow_nan=False)


def read_json(
    path: str | Path,
    kind: type = dict,
    error: type[SeqlabError] = RunError,
    fix: str = "the run directory is damaged; restore it from a copy or retrain",
    limit: int = MAX_BYTES,
) -> Any:
    """The JSON document at `path`, which must be a `kind` (dict or list); `error` names the file,
    what is wrong with it and `fix`. A missing file raises FileNotFoundError for the caller to word."""
    path = Path(path)
    try:
        data = json.loads(read_text(path, error, fix, limit))
    except UnicodeDecodeError as problem:
        raise error(f"{path} is not UTF-8 ({problem.reason} at byte {problem.start}); {fix}") from None
    except json.JSONDecodeError as problem:
        raise error(f"{path} is not valid JSON ({problem.msg} at line {problem.lineno}, column {problem.colno}); "
                    f"{fix}") from None
    except RecursionError:
        raise error(f"{path} is nested too deeply to be a file seqlab wrote; {fix}") from None
    if not isinstance(data, kind):
        raise error(f"{path} holds {_kind_name(type(data))}, not {_kind_name(kind)}; {fix}")
    return data


def read_text(
    path: str | Path, error: type[SeqlabError] = RunError,
    fix: str = "the run directory is damaged; restore it from a copy or retrain", limit: int = MAX_BYTES,
) -> str:
    """The UTF-8 text of the regular file `path`, at most `limit` bytes (UnicodeDecodeError for the caller)."""
    path = Path(path)
    with open(path, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise error(f"{path} is not a regular file (a device, a pipe or a link to one); {fix}")
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise error(f"{path} is larger than {limit:,} bytes, more than seqlab ever writes there; {fix}")
    return raw.decode("utf-8")


def loads_line(text: str) -> Any:
    """One JSON value from a line of a data file; RecursionError (absurd nesting) becomes ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def check(
    data: dict[str, Any], path: str | Path, expected: dict[str, Callable[[Any], bool] | type | tuple[type, ...]],
    error: type[SeqlabError] = RunError, fix: str = "the run directory is damaged; restore it from a copy or retrain",
) -> None:
    """Each key of `expected` that `data` holds has the type (or passes the test) given; a test
    function's docstring says what it wants. Keys that must be present are checked by the caller."""
    for key, want in expected.items():
        if key not in data:
            continue
        value = data[key]
        if callable(want) and not isinstance(want, type):
            if not want(value):
                raise error(f"{path}: {key!r} must be {want.__doc__}, not {_describe(value)}; {fix}")
        elif not isinstance(value, want) or (isinstance(value, bool) and bool not in _types(want)):
            names = " or ".join(_kind_name(t) for t in _types(want))
            raise error(f"{path}: {key!r} must be {names}, not {_describe(value)}; {fix}")


def label_list(value: Any) -> bool:
    """a list of at least two distinct, non-empty strings"""
    return (isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) and v for v in value)
            and len(set(value)) == len(value))


def string_map(value: Any) -> bool:
    """an object mapping names to strings"""
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def count(value: Any) -> bool:
    """a whole number, 0 or more"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _types(want: type | tuple[type, ...]) -> tuple[type, ...]:
    return want if isinstance(want, tuple) else (want,)


def _kind_name(kind: type) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "a whole number", float: "a number",
            bool: "true or false", type(None): "null"}.get(kind, kind.__name__)


def _describe(value: Any) -> str:
    shown = repr(value)
    return f"{_kind_name(type(value))} {shown[:40] + '...' if len(shown) > 40 else shown}"
