"""docs/lecture.md runs as written (on a subset of IMDb), so the tutorial cannot rot."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import seqlab

LECTURE = Path(__file__).resolve().parent.parent / "docs" / "lecture.md"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def run_blocks(blocks: list[str]) -> list[str]:
    """Execute blocks in one namespace, in order; return what each printed."""
    namespace: dict = {"__name__": "lecture"}
    outputs = []
    for block in blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, str(LECTURE), "exec"), namespace)
        outputs.append(printed.getvalue())
    return outputs


@pytest.mark.slow
def test_lecture_runs_on_a_subset(archive, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    prepare = seqlab.prepare
    monkeypatch.setattr(seqlab, "prepare", lambda source, encoder=None: prepare(
        seqlab.DataSource(archive=str(archive)), encoder, train_size=1_000, test_size=300))
    blocks = python_blocks(LECTURE)
    assert len(blocks) >= 9
    outputs = run_blocks(blocks)
    assert "1000 train sequences" in outputs[0]
    assert "x_train shape: (1000, 200)" in outputs[1]
    assert "1,292,481" in outputs[3] and "1,329,473" in outputs[3]
    assert outputs[5].count("test accuracy") == 2
    assert (tmp_path / "sequence_models_history.png").is_file()
    assert outputs[-1].count("\n") == 2


def render(path: Path = LECTURE) -> None:
    """Run the lecture on all of IMDb and write each block's output under it (```text blocks)."""
    document = re.sub(r"(```python\n.*?```\n)\n```text\n.*?```\n", r"\1", path.read_text(), flags=re.DOTALL)
    outputs = iter(run_blocks(python_blocks(path)))

    def with_output(match: re.Match) -> str:
        printed = next(outputs).rstrip()
        return match.group(0) + (f"\n```text\n{printed}\n```\n" if printed else "")

    path.write_text(re.sub(r"```python\n.*?```\n", with_output, document, flags=re.DOTALL))


if __name__ == "__main__":  # python tests/test_docs.py  (from a scratch folder: it writes runs/)
    render()
