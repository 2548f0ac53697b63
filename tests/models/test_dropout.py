import pytest
import torch

from seqlab.models import build_model
from seqlab.models.dropout import ThreadDropout, thread_generator


@pytest.mark.parametrize("per_thread", [False, True])
def test_whole_vector_dropout_drops_whole_words_and_keeps_the_scale(per_thread):
    torch.manual_seed(0)
    dropout = ThreadDropout(0.25, whole_vectors=True).train()
    x = torch.ones(64, 50, 16)  # (batch, time, features)
    if per_thread:
        with thread_generator(7):
            y = dropout(x)
    else:
        y = dropout(x)
    dropped = (y == 0).all(-1)  # (batch, time)
    kept = (y == 1 / 0.75).all(-1)
    assert (dropped | kept).all()  # every word all in or all out
    assert 0.2 < dropped.float().mean() < 0.3
    assert torch.equal(dropout.eval()(x), x)


def test_whole_vector_masks_repeat_with_the_thread_seed():
    dropout = ThreadDropout(0.5, whole_vectors=True).train()
    x = torch.randn(4, 9, 3)
    with thread_generator(1):
        first = dropout(x)
    with thread_generator(1):
        again = dropout(x)
    with thread_generator(2):
        other = dropout(x)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_word_dropout_in_a_model_acts_only_while_training():
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=50, embedding_dim=8, hidden_size=4, word_dropout=0.5)
    ids, lengths = torch.randint(3, 50, (6, 12)), torch.full((6,), 12)
    model.eval()
    assert torch.equal(model(ids, lengths).logits, model(ids, lengths).logits)
    model.train()
    assert not torch.equal(model(ids, lengths).logits, model(ids, lengths).logits)
