"""Hub-shaped run directories: the standard tokenizer.json, the model card, loading from a Hub cache."""

import hashlib
import json
import shutil
import sys

import numpy as np
import pytest
from tokenizers import Tokenizer

import seqlab
from seqlab.extras import MissingExtra
from seqlab import runs
from seqlab.errors import RunError
from seqlab.models import build_model
from seqlab.text.encoder import EncoderConfig, TextEncoder

TEXTS = ["A wonderful, moving film.", "", "!!!", "It's <br />GREAT<br/>", "Ünïcödé ΣΑΣ naïve café", "x" * 3,
         "Dull. " * 300, "good\x00bad", "the " * 199, "the " * 200]


def cut(ids: list[int], config: EncoderConfig) -> list[int]:
    """seqlab's cut to maxlen, as docs/serving.md applies it to tokenizer.json's ids."""
    return ids[-config.maxlen:] if config.truncating == "pre" else ids[: config.maxlen]


def test_run_tokenizer_json_encodes_as_seqlab_does(synthetic_run):
    tokenizer = Tokenizer.from_file(str(synthetic_run / "tokenizer.json"))
    encoder = seqlab.load(synthetic_run).encoder
    encoded = encoder.encode(TEXTS)
    for index, text in enumerate(TEXTS):
        ids = tokenizer.encode(text).ids
        assert cut(ids, encoder.config) == encoded.sequence(index).tolist()
        if not encoded.truncated[index]:
            assert ids == encoded.sequence(index).tolist()  # within maxlen: the tokenizer's ids as they are


@pytest.mark.parametrize("settings", [dict(start_token=False, maxlen=5), dict(truncating="post", maxlen=5),
                                      dict(lowercase=False, maxlen=50)])
def test_saved_tokenizer_json_follows_the_encoder_settings(synthetic_corpus, tmp_path, settings):
    config = EncoderConfig(max_features=200, **settings)
    encoder = TextEncoder.fit(synthetic_corpus.train.texts, config)
    encoder.save(tmp_path)
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    texts = [*TEXTS, *synthetic_corpus.test.texts[:20]]
    encoded = TextEncoder.load(tmp_path).encode(texts)
    assert [cut(e.ids, config) for e in tokenizer.encode_batch(texts)] == [
        encoded.sequence(i).tolist() for i in range(len(texts))]
    assert json.loads((tmp_path / "encoder.json").read_text())["tokenizer"] == "tokenizer.json"  # one copy


def test_tokenizer_json_edited_apart_from_encoder_json_is_refused(synthetic_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    document = json.loads((run / "tokenizer.json").read_text())
    document["post_processor"] = None  # no start token, while encoder.json says start_token=True
    (run / "tokenizer.json").write_text(json.dumps(document))
    with pytest.raises(RunError, match="start token"):
        seqlab.load(run)


def test_model_card_and_config_are_hub_shaped(synthetic_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(synthetic_run / "README.md")
    assert card.data.library_name == "seqlab" and card.data.pipeline_tag == "text-classification"
    assert {"seqlab", "text-classification", "lstm"} <= set(card.data.tags)
    assert {"accuracy", "loss"} <= set(card.data.metrics)
    accuracy = json.loads((synthetic_run / "metrics.json").read_text())["test"]["accuracy"]
    for expected in (f"| accuracy | {accuracy:.4f} |", '0: "negative"', '1: "positive"', "synthetic: ",
                     "## Training configuration", "## Intended use and limits", "at most 200 tokens"):
        assert expected in card.text
    config = json.loads((synthetic_run / "config.json").read_text())
    assert config["architectures"] == [type(seqlab.load(synthetic_run).model).__name__]


def test_model_card_of_a_run_without_test_metrics(synthetic, tmp_path):
    model = build_model("gru", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, hidden_size=8)
    runs.save_run(tmp_path / "run", model, synthetic.encoder, ("a: b", 'say "x"'), {}, {}, {})
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert card.data.library_name == "seqlab" and not card.data.metrics
    assert '0: "a: b"' in card.text and '1: "say \\"x\\""' in card.text


def hub_cache(run, cache, repo="org/name", revision="0123456789abcdef0123456789abcdef01234567"):
    """`run` laid out as huggingface_hub caches a download: blobs named by hash, snapshot symlinks, refs/main."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True)
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in run.iterdir():
        data = path.read_bytes()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / path.name).symlink_to(f"../../blobs/{blob.name}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    return folder, snapshot


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read when huggingface_hub was imported
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_load_from_a_hub_snapshot_and_a_cached_repo_id(synthetic_run, offline_cache):
    folder, snapshot = hub_cache(synthetic_run, offline_cache)
    texts = ["A wonderful film.", "Dull. " * 300]
    expected = seqlab.load(synthetic_run).predict_proba(texts)
    for source in (snapshot, folder, "org/name"):
        predictor = seqlab.load(source)
        assert predictor.run.directory.resolve() == snapshot.resolve()
        assert np.array_equal(predictor.predict_proba(texts), expected)


def test_repo_not_in_the_cache_or_no_huggingface_hub_is_one_clear_line(offline_cache, monkeypatch):
    with pytest.raises(RunError, match=r"no Hub repo org/absent in the local Hugging Face cache; download it first"):
        seqlab.load("org/absent")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if it were not installed
    with pytest.raises(MissingExtra, match=r"loading the Hub repo org/absent .* needs the hub extra: pip install 'seqlab\[hub\]'") as error:
        seqlab.load("org/absent")
    assert "\n" not in str(error.value)
    with pytest.raises(RunError, match="no run directory at no/such/run"):  # a path, never a repo id
        seqlab.load("no/such/run")


def test_run_missing_its_tokenizer_json_is_one_clear_line(synthetic_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    (run / "tokenizer.json").unlink()
    with pytest.raises(RunError, match="tokenizer.json is missing; encoder.json names it") as error:
        seqlab.load(run)
    assert "\n" not in str(error.value)
