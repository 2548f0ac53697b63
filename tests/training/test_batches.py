import numpy as np

from seqlab.text.encoder import pad_sequences
from seqlab.training.batches import batch_indices, collate


def test_collate_puts_tokens_first_and_padding_after(tiny_reviews):
    split = tiny_reviews.train
    indices = np.array([3, 10, 42])
    batch = collate(split, indices)
    sequences = [split.encoded.sequence(i).tolist() for i in indices]
    expected = pad_sequences(sequences, int(batch.lengths.max()), padding="post")
    assert np.array_equal(batch.ids.numpy(), expected)
    assert batch.lengths.tolist() == [len(s) for s in sequences]
    assert batch.labels.tolist() == split.labels[indices].tolist()


def test_every_text_appears_once_per_epoch():
    lengths = np.random.default_rng(0).integers(1, 200, size=1_000)
    for rng, bucket in [(np.random.default_rng(1), True), (np.random.default_rng(1), False), (None, True)]:
        batches = batch_indices(lengths, 128, rng, bucket)
        assert sorted(np.concatenate(batches).tolist()) == list(range(1_000))
        assert all(len(b) <= 128 for b in batches)


def test_bucketing_cuts_padding_and_stays_seeded():
    lengths = np.random.default_rng(0).integers(1, 200, size=5_000)

    def padding(batches):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    bucketed = batch_indices(lengths, 128, np.random.default_rng(1), bucket=True)
    plain = batch_indices(lengths, 128, np.random.default_rng(1), bucket=False)
    assert padding(bucketed) < padding(plain) / 5
    again = batch_indices(lengths, 128, np.random.default_rng(1), bucket=True)
    assert all(np.array_equal(a, b) for a, b in zip(bucketed, again))
