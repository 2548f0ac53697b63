import pytest
import torch

from seqlab.models import build_model
from seqlab.models.attention import AdditiveAttention

from test_models import _padded_batch

ATTENTION_MODELS = ["rnn-attention", "lstm-attention", "gru-attention", "bilstm-attention", "bigru-attention"]


@pytest.mark.parametrize("name", ATTENTION_MODELS + ["transformer"])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(name):
    torch.manual_seed(0)
    options = {"pooling": "attention"} if name == "transformer" else {}
    model = build_model(name, vocab_size=50, embedding_dim=8, hidden_size=6, **options).eval()
    ids, lengths = _padded_batch(extra_padding=3)
    weights = model(ids, lengths).attention  # (batch, time)
    assert weights.shape == ids.shape
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(lengths)), rtol=0, atol=1e-6)
    padding = torch.arange(ids.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
    assert torch.all(weights[padding] == 0)  # exactly zero, not merely small
    assert torch.all(weights[~padding] > 0)


def test_models_without_attention_return_none():
    ids, lengths = _padded_batch()
    assert build_model("lstm", vocab_size=50, embedding_dim=8, hidden_size=6)(ids, lengths).attention is None


def test_attention_follows_the_scores():
    """A token whose state projects to a much larger score takes almost all the weight."""
    attention = AdditiveAttention(width=2, attention_size=1)
    with torch.no_grad():
        attention.project.weight.copy_(torch.tensor([[1.0, 0.0]]))
        attention.project.bias.zero_()
        attention.score.weight.fill_(20.0)
    states = torch.tensor([[[0.0, 1.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])  # the last step is padding
    pooled, weights = attention(states, torch.tensor([3]))
    assert weights[0, 1] > 0.99 and weights[0, 3] == 0
    torch.testing.assert_close(pooled, weights[:, :3] @ states[0, :3])
