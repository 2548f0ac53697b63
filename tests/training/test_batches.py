import numpy as np

from seqlab.text.encoder import pad_sequences
from seqlab.training.batches import STEP_MULTIPLE, batch_indices, collate


def test_collate_puts_tokens_first_and_padding_after(synthetic):
    split = synthetic.train
    indices = np.array([3, 10, 42])
    batch = collate(split, indices)
    sequences = [split.encoded.sequence(i).tolist() for i in indices]
    longest = max(len(s) for s in sequences)
    assert batch.ids.shape[1] % STEP_MULTIPLE == 0 and longest <= batch.ids.shape[1] < longest + STEP_MULTIPLE
    expected = pad_sequences(sequences, batch.ids.shape[1], padding="post")
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


def test_split_keeps_rows_in_order_and_cuts_each_piece_to_its_own_length(synthetic):
    split = synthetic.train
    indices = np.argsort(split.lengths)[::20][:9]  # short to long
    batch = collate(split, indices)
    pieces = batch.split(2)
    assert [len(p) for p in pieces] == [5, 4]
    assert np.array_equal(np.concatenate([p.indices for p in pieces]), indices)
    for piece in pieces:
        assert int(piece.lengths.max()) <= piece.ids.shape[1] < int(piece.lengths.max()) + STEP_MULTIPLE
        assert np.array_equal(piece.ids.numpy(), collate(split, piece.indices).ids.numpy())
