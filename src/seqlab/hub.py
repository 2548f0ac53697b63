"""Run directories shaped for the Hugging Face Hub: the model card, and finding a run by Hub repo id.

A run directory is already a Hub model repository: config.json (naming the architecture),
tokenizer.json (standard), model.safetensors and a generated README.md (the model card, with
the YAML front matter the Hub reads). Upload it as it is; load it back with

    seqlab.load("runs/lstm")          # a run directory, or a downloaded Hub snapshot folder
    seqlab.load("org/name")           # a Hub repo already in the local Hugging Face cache (offline)

Nothing is downloaded: a repo id is looked up in the cache (`huggingface_hub.snapshot_download`
with `local_files_only=True`), so fetch it first with `hf download org/name`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from seqlab.errors import RunError

CARD_FILE = "README.md"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, as the Hub spells a repo id


def resolve_run(source: str | Path) -> Path:
    """The folder to read a run from: `source` itself, the snapshot refs/main names in a Hub cache
    folder (models--ORG--NAME), or a Hub repo id's snapshot in the local Hugging Face cache."""
    path = Path(source)
    if path.is_dir() and (path / "refs" / "main").is_file() and (path / "snapshots").is_dir():
        return path / "snapshots" / (path / "refs" / "main").read_text().strip()
    if path.exists() or not REPO_ID.match(str(source)):
        return path
    repo = str(source)
    from seqlab.extras import require

    require("hub", f"no run directory at {repo}; loading the Hub repo {repo} from the local Hugging Face cache")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        raise RunError(f"no run directory at {repo}, and no Hub repo {repo} in the local Hugging Face cache; "
                       f"download it first (`hf download {repo}`) or give the path of a run directory") from None


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """README.md for a run: YAML front matter (library_name, tags, metrics) and what the model is."""
    model, labels, data = config["model"], config["label_names"], config.get("data") or {}
    test = {key: value for key, value in (metrics.get("test") or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}
    tags = ["seqlab", "text-classification", model["name"]]
    front = ["---", "library_name: seqlab", "pipeline_tag: text-classification",
             "tags:", *(f"- {json.dumps(tag)}" for tag in tags),
             "metrics:", *(f"- {json.dumps(name)}" for name in test), "---"]
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in test.items()) or "| (no test split) | |"
    sizes = ", ".join(f"{data[key]:,} {key}" for key in ("train", "validation", "test") if isinstance(data.get(key), int))
    settings = {"model": model, "encoder": config["encoder"], "training": config.get("training", {})}
    encoder = config["encoder"]
    vocabulary = model["config"].get("vocab_size", encoder["max_features"])
    return "\n".join([
        *front,
        "",
        f"# {model['name']} text classifier (seqlab {config.get('seqlab_version', '')})",
        "",
        f"A text classifier (seqlab's `{model['name']}`, {', '.join(config.get('architectures', []))}) trained "
        f"with seqlab to sort texts into {len(labels)} classes.",
        "",
        "## Labels",
        "",
        *(f"- {index}: {json.dumps(name, ensure_ascii=False)}" for index, name in enumerate(labels)),
        "",
        "## Use",
        "",
        "```python",
        "import seqlab",
        "",
        'predictor = seqlab.load("ORG/NAME")   # this repo from the local Hugging Face cache, or a folder',
        'print(predictor.predict(["A wonderful film."]))',
        "```",
        "",
        "Without seqlab: `seqlab export RUN --format onnx` writes model.onnx, which with tokenizer.json runs on "
        "plain onnxruntime + tokenizers (seqlab's docs/serving.md has the code).",
        "",
        "## Data",
        "",
        f"{data.get('name') or 'unnamed corpus'}" + (f": {sizes} texts." if sizes else "."),
        "",
        "## Metrics (test split)",
        "",
        "| metric | value |",
        "| --- | --- |",
        rows,
        "",
        "## Training configuration",
        "",
        "```json",
        json.dumps(settings, indent=2, ensure_ascii=False),
        "```",
        "",
        "## Intended use and limits",
        "",
        f"For classifying texts like the training data ({data.get('name') or 'see above'}) into the labels above. "
        f"The model reads at most {encoder['maxlen']} tokens: a longer text is cut "
        f"({'its start is dropped' if encoder['truncating'] == 'pre' else 'its end is dropped'}), and it knows only "
        f"the most frequent training words ({vocabulary:,} ids; others read as one unknown word). "
        "It has not been evaluated on other domains or languages, and it reflects the biases of its training data; "
        "do not use it for decisions about people.",
        "",
    ])


__all__ = ["CARD_FILE", "model_card", "resolve_run"]
