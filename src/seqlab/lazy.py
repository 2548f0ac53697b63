"""Package exports imported on first use (PEP 562), so importing a package costs only what is used.

`seqlab --help` imports the light config modules inside seqlab.data, seqlab.text and
seqlab.models; with eager exports their packages would load numpy and torch first.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: each name in `exports` (name -> "module", or
    "module:attribute" where the module calls it otherwise) is imported the first time it is
    read, then kept on the package."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = exports[name].partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
