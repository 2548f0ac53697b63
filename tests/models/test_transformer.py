import torch

from seqlab.models import build_model
from seqlab.models.transformer import sinusoidal_positions

from test_models import _padded_batch


def test_padding_mask_hides_padding_from_every_token():
    """Changing the ids in padded positions, however wildly, changes no logit; changing a real token does."""
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=50, embedding_dim=16, heads=4, layers=2, hidden_size=32).eval()
    ids, lengths = _padded_batch(extra_padding=5)
    padding = torch.arange(ids.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
    noisy = ids.clone()
    noisy[padding] = torch.randint(3, 50, (int(padding.sum()),))
    with torch.no_grad():
        clean, garbage = model(ids, lengths).logits, model(noisy, lengths).logits
        changed = ids.clone()
        changed[0, 0] = 3 if ids[0, 0] != 3 else 4
        moved = model(changed, lengths).logits
    torch.testing.assert_close(clean, garbage, rtol=0, atol=1e-5)
    assert not torch.allclose(clean[0], moved[0])
    torch.testing.assert_close(clean[1:], moved[1:], rtol=0, atol=1e-5)


def test_positions_make_word_order_matter():
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=50, embedding_dim=16, heads=4, layers=1, dropout=0.0).eval()
    ids = torch.tensor([[5, 9, 12, 20]])
    lengths = torch.tensor([4])
    with torch.no_grad():
        assert not torch.allclose(model(ids, lengths).logits, model(ids.flip(1), lengths).logits)


def test_sinusoidal_table():
    table = sinusoidal_positions(10, 6)
    assert table.shape == (10, 6)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    assert torch.all(table.abs() <= 1)
