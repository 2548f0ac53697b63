"""The region embedding pretrained for the seq-cnn: its bags against a loop, its loss against a hand
computation, the noise it draws, and independence from padding."""

import pytest
import torch
from torch.nn import functional

from seqlab.errors import ConfigError
from seqlab.models.region_embedding import RegionEmbeddingConfig, RegionEmbeddingModel, embed_regions


@pytest.mark.parametrize("width, first, count", [(5, -2, 9), (3, -3, 11), (1, 0, 9), (4, 2, 3), (2, -1, 12)])
def test_regions_are_relu_of_the_bag_of_the_words_they_read(width, first, count):
    torch.manual_seed(0)
    table, bias = torch.randn(20, 3), torch.randn(3)
    ids = torch.randint(3, 20, (3, 9))
    lengths = torch.tensor([9, 4, 1])
    regions = embed_regions(ids, lengths, table, bias, width, first, count)  # (batch, count, 3)
    assert regions.shape == (3, count, 3)
    for text in range(3):
        for k in range(count):
            words = [ids[text, p] for p in range(first + k, first + k + width) if 0 <= p < lengths[text]]
            expected = torch.relu(bias + sum((table[w] for w in words), torch.zeros(3)))
            torch.testing.assert_close(regions[text, k], expected)


def _model(**options) -> RegionEmbeddingModel:
    torch.manual_seed(0)
    config = RegionEmbeddingConfig(**{"vocab_size": 12, "dimension": 4, "width": 3, "context": 2, "negatives": 3,
                                      "skip_frequent": 1, **options})
    model = RegionEmbeddingModel(config)
    with torch.no_grad():
        model.output.weight.uniform_(-1, 1)  # it starts at 0; any values make a sharper check
    return model


def test_the_loss_is_negative_sampling_over_the_words_around_each_region():
    """Oracle: with every noise word forced to id 9, each text's loss by hand, region by region."""
    model = _model()
    counts = torch.zeros(12)
    counts[9] = 5.0
    model.set_word_counts(counts)
    ids = torch.tensor([[1, 5, 3, 7, 8, 4, 6], [6, 11, 5, 0, 0, 0, 0]])
    lengths = torch.tensor([7, 3])
    summed = model(ids, lengths).logits[:, 0]  # (batch,)
    table, output = model.embedding.weight, model.output.weight
    for text in range(2):
        length, total = int(lengths[text]), torch.tensor(0.0)
        for centre in range(length):
            words = [ids[text, p] for p in range(centre - 1, centre + 2) if 0 <= p < length]
            region = torch.relu(model.bias + sum(table[w] for w in words))
            around = [p for p in (centre - 3, centre - 2, centre + 2, centre + 3) if 0 <= p < length]
            targets = [ids[text, p] for p in around if ids[text, p] >= 4]  # ids 0-2 reserved, 3 skipped as frequent
            total = total - sum((functional.logsigmoid(region @ output[t]) for t in targets), torch.tensor(0.0))
            total = total - len(targets) * functional.logsigmoid(-(region @ output[9]))
        torch.testing.assert_close(summed[text], total, rtol=1e-5, atol=1e-5)


def test_noise_never_draws_reserved_or_skipped_words():
    model = _model(skip_frequent=3)
    model.set_word_counts(torch.arange(12, dtype=torch.float32))
    assert torch.all(model.noise[:6] == 0) and torch.all(model.noise[6:] > 0)
    torch.testing.assert_close(model.noise[6:], torch.arange(6, 12, dtype=torch.float32) ** 0.75)


def test_a_text_scores_the_same_alone_and_padded_in_a_batch():
    model = _model()
    counts = torch.zeros(12)
    counts[10] = 1.0  # one noise word: no draw to differ between the two calls
    model.set_word_counts(counts)
    alone = model(torch.tensor([[5, 6, 7, 8]]), torch.tensor([4])).logits[0]
    batched = model(torch.tensor([[5, 6, 7, 8, 0, 0], [4, 5, 6, 7, 8, 9]]), torch.tensor([4, 6])).logits[0]
    torch.testing.assert_close(alone, batched)


@pytest.mark.parametrize("options, message", [({"width": 0}, "width"), ({"skip_frequent": 12}, "skip_frequent"),
                                              ({"negatives": 0}, "negatives")])
def test_bad_settings_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        RegionEmbeddingConfig(vocab_size=12, **options)
