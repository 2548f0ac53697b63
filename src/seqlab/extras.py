"""Optional features and the extras that install them: the one check every optional import goes through.

    require("serve")                             # before FastAPI or uvicorn is imported
    require("export", "seqlab predict --onnx")   # `feature` names what the user asked for

A missing package raises MissingExtra (a ConfigError: `seqlab` exits with code 2) in one line that
names the extra to install. Nothing is imported here: the packages are only looked up.
"""

from __future__ import annotations

import importlib.util

from seqlab.errors import ConfigError

# extra: (what needs it, the modules its packages provide); the extras of pyproject.toml's
# [project.optional-dependencies] (tests/test_extras.py keeps the two in step)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "serve": ("seqlab serve", ("fastapi", "uvicorn", "swagger_ui_bundle", "prometheus_client")),
    "grpc": ("seqlab serve --grpc-port", ("grpc", "google.protobuf")),
    "export": ("seqlab export", ("onnx", "onnxruntime", "onnxscript")),
    "hub": ("a run from the Hugging Face Hub", ("huggingface_hub",)),
    "tensorboard": ("--tensorboard", ("tensorboard",)),
}


class MissingExtra(ConfigError):
    """An optional feature was asked for without the extra that installs its packages."""


def require(extra: str, feature: str | None = None) -> None:
    """Raise MissingExtra unless every package of `extra` is installed; `feature` (default: the
    extra's own) is what the message says needs it."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; seqlab's extras are {', '.join(EXTRAS)}")
    needed_by, modules = EXTRAS[extra]
    for module in modules:
        if not _installed(module):
            raise MissingExtra(f"{feature or needed_by} needs the {extra} extra: pip install 'seqlab[{extra}]' "
                               f"({module} is not installed)")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False
