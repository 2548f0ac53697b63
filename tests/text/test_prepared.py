import numpy as np
import pytest

from seqlab.errors import DataError
from seqlab.text.encoder import EncoderConfig, TextEncoder
from seqlab.text.prepared import InMemorySource, open_prepared, prepare
from seqlab.training.batches import collate


class Interrupted(Exception):
    pass


class FailingSource:
    """Fails in the worker that reads texts from `fail_from` on, as a crash in the middle of preparing would."""

    def __init__(self, texts, labels, fail_from):
        self.texts, self.labels, self.fail_from = texts, labels, fail_from

    def __len__(self):
        return len(self.texts)

    def read(self, start, stop):
        if start >= self.fail_from:
            raise Interrupted(f"texts {start}..{stop}")
        return self.texts[start:stop], self.labels[start:stop]


@pytest.mark.slow
def test_prepare_resumes_and_its_memory_mapped_arrays_equal_an_in_memory_encoding(imdb_corpus, tmp_path):
    corpus = imdb_corpus.subset(1_500, 400, seed=3)
    config = EncoderConfig(max_features=2_000, maxlen=120)
    out = tmp_path / "prepared"
    failing = {"train": FailingSource(corpus.train.texts, corpus.train.labels, fail_from=1_000),
               "test": InMemorySource(corpus.test.texts, corpus.test.labels)}
    with pytest.raises(Interrupted):
        prepare(failing, out, config, chunk_size=250, workers=2)
    finished = sorted(path for path in (out / ".chunks").glob("*.npz"))
    names = [path.name for path in finished]
    assert names and "train-000004.npz" not in names  # some chunks finished, the failing one did not
    finished_texts = 0
    for path in finished:
        with np.load(path) as chunk:
            finished_texts += len(chunk["labels"])
    assert not (out / "manifest.json").exists()
    with pytest.raises(DataError, match="unfinished"):
        open_prepared(out)

    sources = {"train": InMemorySource(corpus.train.texts, corpus.train.labels),
               "test": InMemorySource(corpus.test.texts, corpus.test.labels)}
    seen = []

    def progress(stage, done, total):
        seen.append(done)

    prepare(sources, out, config, chunk_size=250, workers=2, progress=progress)
    assert seen[0] == finished_texts  # finished chunks were skipped, not redone
    assert not (out / ".chunks").exists()

    prepared = open_prepared(out)
    assert isinstance(prepared.train.encoded.ids, np.memmap) and prepared.train.encoded.ids.dtype == np.uint16
    encoder = TextEncoder.fit(corpus.train.texts, config)
    assert prepared.encoder.to_json() == encoder.to_json()
    for name, split in (("train", corpus.train), ("test", corpus.test)):
        expected = encoder.encode(split.texts)
        got = getattr(prepared, name)
        assert np.array_equal(np.asarray(got.encoded.ids), expected.ids)
        assert np.array_equal(got.lengths, expected.lengths)
        assert np.array_equal(got.encoded.full_lengths, expected.full_lengths)
        assert np.array_equal(got.labels, split.labels)
    # Batches from the memory-mapped corpus equal batches from the in-memory one.
    from seqlab.text.cache import EncodedSplit

    in_memory = EncodedSplit(encoder.encode(corpus.train.texts), corpus.train.labels)
    indices = np.array([5, 1_499, 0, 730])
    a, b = collate(prepared.train, indices), collate(in_memory, indices)
    assert np.array_equal(a.ids.numpy(), b.ids.numpy()) and np.array_equal(a.labels.numpy(), b.labels.numpy())


def test_prepare_refuses_to_mix_encoder_settings_or_sources(synthetic_corpus, tmp_path):
    texts = synthetic_corpus.train.texts[:100]
    sources = {"train": FailingSource(texts, synthetic_corpus.train.labels[:100], fail_from=50)}
    with pytest.raises(Interrupted):
        prepare(sources, tmp_path, EncoderConfig(maxlen=30), chunk_size=50, workers=1, fingerprint="data:first")
    with pytest.raises(DataError, match="other encoder settings"):
        prepare(sources, tmp_path, EncoderConfig(maxlen=40), chunk_size=50, workers=1)
    with pytest.raises(DataError, match="a preparation of other data .data:first"):
        prepare(sources, tmp_path, EncoderConfig(maxlen=30), chunk_size=50, workers=1, fingerprint="data:second")
