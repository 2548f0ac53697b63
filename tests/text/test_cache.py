import numpy as np

from seqlab.text import cache
from seqlab.text.encoder import EncoderConfig


def _corpus(synthetic_corpus):
    return synthetic_corpus.subset(300, 100, seed=1)


def test_second_load_comes_from_cache_and_is_identical(synthetic_corpus, tmp_path):
    corpus = _corpus(synthetic_corpus)
    reads = []

    def read():
        reads.append(1)
        return corpus

    first, hit_first = cache.load_or_encode("fp", read, EncoderConfig(), tmp_path)
    second, hit_second = cache.load_or_encode("fp", read, EncoderConfig(), tmp_path)
    assert (hit_first, hit_second, len(reads)) == (False, True, 1)
    assert np.array_equal(first.train.encoded.ids, second.train.encoded.ids)
    assert np.array_equal(first.test.labels, second.test.labels)
    assert first.encoder.to_json() == second.encoder.to_json()


def test_changing_a_setting_or_the_source_rebuilds(synthetic_corpus, tmp_path):
    corpus = _corpus(synthetic_corpus)
    reads = []

    def read():
        reads.append(1)
        return corpus

    cache.load_or_encode("fp", read, EncoderConfig(), tmp_path)
    shorter, hit = cache.load_or_encode("fp", read, EncoderConfig(maxlen=50), tmp_path)
    assert not hit and shorter.train.lengths.max() == 50
    _, hit = cache.load_or_encode("another source", read, EncoderConfig(), tmp_path)
    assert not hit and len(reads) == 3


def test_damaged_cache_entry_is_rebuilt(synthetic_corpus, tmp_path):
    corpus = _corpus(synthetic_corpus)
    cache.load_or_encode("fp", lambda: corpus, EncoderConfig(), tmp_path)
    entry = tmp_path / "encoded" / cache.cache_key("fp", EncoderConfig())
    (entry / "train_ids.npy").write_bytes(b"garbage")
    again, hit = cache.load_or_encode("fp", lambda: corpus, EncoderConfig(), tmp_path)
    assert not hit and len(again.train) == 300


def test_take_gathers_ragged_rows(synthetic):
    split = synthetic.train
    picked = split.take(np.array([5, 0, 7]))
    for row, source in enumerate([5, 0, 7]):
        assert np.array_equal(picked.encoded.sequence(row), split.encoded.sequence(source))
    assert picked.labels.tolist() == split.labels[[5, 0, 7]].tolist()
