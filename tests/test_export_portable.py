"""The ONNX export used without seqlab: docs/serving.md's recipe, run where seqlab cannot be imported."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab import runs
from seqlab.export import export_onnx
from seqlab.models import build_model
from seqlab.predict import load
from seqlab.text.encoder import EncoderConfig, TextEncoder

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # exports and a subprocess: seconds

SERVING = Path(__file__).resolve().parent.parent / "docs" / "serving.md"
EDGE_TEXTS = ["A wonderful, moving film.", "", "!!!", "<br />", "Dull. " * 300, "good " * 7, "bad " * 8]

# Runs the recipe with seqlab unimportable: an import hook refuses it, and no path to src/ is kept.
WRAPPER = """import json, sys
class NoSeqlab:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "seqlab":
            raise ImportError("seqlab is not importable in this test")
sys.meta_path.insert(0, NoSeqlab())
sys.path = [entry for entry in sys.path if not entry.rstrip("/").endswith("src")]
try:
    import seqlab
except ImportError:
    pass
else:
    raise SystemExit("seqlab was importable")
results = []
for run, texts in json.loads(sys.stdin.read()):
    namespace = {"RUN": run, "TEXTS": texts}
    exec(compile(open(sys.argv[1]).read(), "serving.md", "exec"), namespace)
    results.append(namespace["probabilities"].tolist())
assert not [name for name in sys.modules if name.partition(".")[0] == "seqlab"]
print("RESULTS " + json.dumps(results))
"""


def recipe() -> str:
    """docs/serving.md's Python block that runs model.onnx on onnxruntime, its run and texts made inputs."""
    blocks = [block for block in re.findall(r"```python\n(.*?)```", SERVING.read_text(), flags=re.DOTALL)
              if "import onnxruntime" in block]
    assert len(blocks) == 1
    code, runs_set = re.subn(r'^run = ".*"$', "run = RUN", blocks[0], flags=re.MULTILINE)
    code, texts_set = re.subn(r"^texts = \[.*\]$", "texts = TEXTS", code, flags=re.MULTILINE)
    assert runs_set == texts_set == 1 and "seqlab" not in code
    return code


@pytest.fixture(scope="module")
def binary_run(synthetic_run, tmp_path_factory):
    """The trained binary LSTM (maxlen 200, truncating pre, start token), exported."""
    directory = tmp_path_factory.mktemp("portable") / "binary"
    shutil.copytree(synthetic_run, directory)
    export_onnx(directory)
    return directory


@pytest.fixture(scope="module")
def multiclass_run(synthetic_corpus, tmp_path_factory):
    """Three classes, a short maxlen cut on the other side: the recipe must read both from the metadata."""
    encoder = TextEncoder.fit(synthetic_corpus.train.texts, EncoderConfig(max_features=300, maxlen=6, truncating="post"))
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=encoder.vocab_size, num_classes=3, embedding_dim=8, hidden_size=8)
    directory = tmp_path_factory.mktemp("portable") / "three"
    runs.save_run(directory, model, encoder, ("low", "mid", "high"), {}, {}, {})
    export_onnx(directory)
    return directory


def test_recipe_without_seqlab_gives_the_predictors_probabilities(binary_run, multiclass_run, synthetic_corpus,
                                                                  tmp_path):
    script, snippet = tmp_path / "wrapper.py", tmp_path / "recipe.py"
    script.write_text(WRAPPER)
    snippet.write_text(recipe())
    texts = [*synthetic_corpus.test.texts[:20], *EDGE_TEXTS]
    job = [[str(binary_run), texts], [str(multiclass_run), texts]]
    done = subprocess.run([sys.executable, "-I", str(script), str(snippet)], input=json.dumps(job), text=True,
                          capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.rsplit("RESULTS ", 1)[1])
    for directory, got in zip((binary_run, multiclass_run), results):
        predictor = load(directory)
        expected = predictor.predict_proba(texts)
        assert np.asarray(got).shape == expected.shape == (len(texts), len(predictor.label_names))
        assert np.abs(np.asarray(got) - expected).max() < 1e-5
    long = load(binary_run).encode(["Dull. " * 300])
    assert long.encoded.truncated[0] and long.lengths[0] == 200  # the long text was cut in both


def test_metadata_says_how_to_feed_the_graph(binary_run, multiclass_run):
    import onnxruntime

    def metadata(directory: Path) -> dict:
        session = onnxruntime.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
        assert [output.name for output in session.get_outputs()][:2] == ["probabilities", "logits"]
        return dict(session.get_modelmeta().custom_metadata_map)

    binary, three = metadata(binary_run), metadata(multiclass_run)
    assert json.loads(binary["label_names"]) == ["negative", "positive"] and binary["activation"] == "sigmoid"
    assert (binary["maxlen"], binary["truncation_side"], binary["start_token"]) == ("200", "pre", "1")
    assert (binary["padding_side"], binary["pad_id"], binary["tokenizer"]) == ("post", "0", "tokenizer.json")
    assert json.loads(three["label_names"]) == ["low", "mid", "high"] and three["activation"] == "softmax"
    assert (three["maxlen"], three["truncation_side"]) == ("6", "post")


def test_export_of_a_run_without_tokenizer_json_writes_it(synthetic_run, tmp_path):
    """A run saved before tokenizer.json (its tokenizer inside encoder.json) loads, and export writes the file."""
    from tokenizers import Tokenizer

    old = tmp_path / "old"
    shutil.copytree(synthetic_run, old)
    encoder = load(old).encoder
    (old / "tokenizer.json").unlink()
    (old / "README.md").unlink()
    (old / "encoder.json").write_text(encoder.to_json())  # the older layout
    config = json.loads((old / "config.json").read_text())
    config["checksums"] = {name: digest for name, digest in config["checksums"].items() if name == "model.safetensors"}
    (old / "config.json").write_text(json.dumps(config))
    texts = ["A wonderful film.", "Dull. " * 300]
    assert np.array_equal(load(old).predict_proba(texts), load(synthetic_run).predict_proba(texts))
    export_onnx(old)
    assert Tokenizer.from_file(str(old / "tokenizer.json")).encode(texts[0]).ids == encoder.encode(texts[:1]).ids.tolist()
