from dataclasses import fields

import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.models import build_model, count_parameters, model_config, model_names
from seqlab.models import convolution, ngrams, recurrent, region, transformer
from seqlab.models.kernels import _reversal_index

# Every model with every pooling it offers.
POOLINGS = {recurrent.RecurrentConfig: recurrent.POOLINGS, transformer.TransformerConfig: transformer.POOLINGS,
            convolution.ConvolutionConfig: convolution.POOLINGS, ngrams.NgramBagConfig: ngrams.POOLINGS,
            region.RegionConvolutionConfig: region.POOLINGS}
MODEL_POOLINGS = [(name, pooling) for name in model_names() for pooling in POOLINGS[type(model_config(name))]]

# Parameter counts of the lecture's Keras models (model.summary()).
KERAS_RNN, KERAS_LSTM = 1_292_417, 1_329_473


def test_parameter_counts_match_keras_up_to_the_second_recurrent_bias():
    rnn, lstm = build_model("rnn"), build_model("lstm")
    assert count_parameters(rnn) == KERAS_RNN + 64  # PyTorch's extra b_hh: 64 units
    assert count_parameters(lstm) == KERAS_LSTM + 4 * 64  # one b_hh per gate
    assert f"{KERAS_RNN:,}" in rnn.keras_parameter_note()
    assert f"{KERAS_LSTM:,}" in lstm.keras_parameter_note()


def test_layer_rows_add_up_to_the_total():
    for name in model_names():
        model = _small_model(name, layers=2)
        assert sum(row.parameters for row in model.summary_rows(200)) == count_parameters(model), name


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        build_model("transformer-xl")
    for name in ("rnn", "lstm", "gru", "bilstm"):
        assert name in str(error.value)


def test_unknown_option_names_the_model_and_its_options():
    with pytest.raises(ConfigError, match="no option heads.*hidden_size"):
        build_model("lstm", heads=4)


def _small_model(name: str, **options):
    """A small `name` model; options its config lacks (e.g. layers for the cnn) are left out."""
    known = {field.name for field in fields(type(model_config(name)))}
    options = {"vocab_size": 50, "embedding_dim": 8, "hidden_size": 6, "buckets": 97, **options}
    return build_model(name, **{key: value for key, value in options.items() if key in known})


def _padded_batch(vocab: int = 50, lengths=(9, 4, 1, 6), extra_padding: int = 0):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (len(lengths), max(lengths)), generator=generator)
    lengths = torch.tensor(lengths)
    ids[torch.arange(ids.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return torch.nn.functional.pad(ids, (0, extra_padding)), lengths


@pytest.mark.parametrize("name,pooling", MODEL_POOLINGS)
def test_padding_never_changes_a_prediction(name, pooling):
    """Oracle: each text alone, unpadded, gives the same logits as inside a padded batch."""
    torch.manual_seed(0)
    model = _small_model(name, layers=2, pooling=pooling).eval()
    ids, lengths = _padded_batch()
    with torch.no_grad():
        batched = model(ids, lengths).logits
        more_padding = model(*_padded_batch(extra_padding=7)).logits
        alone = torch.cat([model(ids[i : i + 1, : lengths[i]], lengths[i : i + 1]).logits for i in range(len(lengths))])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(batched, more_padding, rtol=0, atol=1e-5)


def test_padding_test_covers_every_model_and_the_new_poolings():
    names = {name for name, _ in MODEL_POOLINGS}
    assert names == set(model_names()) and {"transformer", "lstm-attention", "bigru-attention", "cnn"} <= names
    assert ("transformer", "attention") in MODEL_POOLINGS and ("gru", "attention") in MODEL_POOLINGS


@pytest.mark.parametrize("name", ["lstm", "bigru", "bigru-attention", "transformer", "cnn", "fasttext"])
def test_padding_does_not_change_gradients(name):
    torch.manual_seed(0)
    model = _small_model(name).eval()  # eval: no dropout noise
    ids, lengths = _padded_batch()
    model(ids, lengths).logits.sum().backward()
    padded_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sum(model(ids[i : i + 1, : lengths[i]], lengths[i : i + 1]).logits.sum() for i in range(len(lengths))).backward()
    for padded, alone in zip(padded_grads, (p.grad for p in model.parameters())):
        torch.testing.assert_close(padded, alone, rtol=0, atol=1e-5)


def test_bidirectional_backward_pass_reads_each_text_reversed():
    index = _reversal_index(torch.tensor([3, 1]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3]]


def test_multiclass_models_have_one_output_per_class():
    model = build_model("gru", num_classes=5, vocab_size=20, embedding_dim=4, hidden_size=3)
    ids, lengths = _padded_batch(vocab=20)
    assert model(ids, lengths).logits.shape == (4, 5)


def test_cnn_windows_near_the_end_read_zeros_past_the_text_whatever_row_zero_holds():
    """Padding ids are zeroed by the length mask, not by the embedding's row 0."""
    torch.manual_seed(0)
    model = _small_model("cnn").eval()
    ids, lengths = _padded_batch()
    with torch.no_grad():
        before = model(ids, lengths).logits
        model.embedding.weight[0] = 5.0  # e.g. a pretrained vector loaded into the padding row
        after = model(ids, lengths).logits
    torch.testing.assert_close(before, after, rtol=0, atol=1e-6)


def test_cnn_config_checks_its_widths():
    with pytest.raises(ConfigError, match="kernel_sizes"):
        build_model("cnn", kernel_sizes=[])
    assert build_model("cnn", kernel_sizes=[2, 3]).config.kernel_sizes == (2, 3)  # config.json holds a list


def test_fasttext_hashes_each_word_pair_from_its_two_ids():
    ids = torch.tensor([[5, 7, 5, 7, 9], [7, 5, 0, 0, 0]])
    rows = ngrams.ngram_rows(ids, 2, buckets=1000, ngram_hash="squared")
    prime = ngrams.HASH_PRIME
    expected = [[(((a * ngrams.HASH_MULTIPLIER + b) % prime) ** 2 + ngrams.HASH_OFFSET) % prime % 1000
                 for a, b in zip(text[:-1], text[1:])] for text in ids.tolist()]
    assert rows.tolist() == expected
    assert rows[0, 0] == rows[0, 2] != rows[1, 0]  # the same pair, the same row; the reversed pair another
    linear = [[(a * ngrams.LINEAR_MULTIPLIER + b) % 1000 for a, b in zip(text[:-1], text[1:])] for text in ids.tolist()]
    assert ngrams.ngram_rows(ids, 2, buckets=1000, ngram_hash="linear").tolist() == linear
    too_short = torch.full((1, 4), 10**6)  # no 5-gram in 4 words
    assert ngrams.ngram_rows(too_short, 5, buckets=7, ngram_hash="squared").shape == (1, 0)


def test_fasttext_hash_holds_large_ids_and_long_ngrams_without_overflow():
    ids = torch.tensor([[2**31 - 2, 2**31 - 3, 2**31 - 2, 1, 2**31 - 2]])
    rows = ngrams.ngram_rows(ids, 5, buckets=2_000_003, ngram_hash="squared")
    expected = ids[0, 0].item()
    for word in ids[0, 1:].tolist():
        expected = (expected * ngrams.HASH_MULTIPLIER + word) % ngrams.HASH_PRIME  # Python's integers: exact
    assert rows.tolist() == [[(expected**2 + ngrams.HASH_OFFSET) % ngrams.HASH_PRIME % 2_000_003]]


@pytest.mark.parametrize("buckets", [1000, 100_000, 230_000, 262_144, 500_000, 1_000_000, 1_048_576, 2_000_000])
def test_fasttext_spreads_the_pairs_of_frequent_words_over_the_buckets(buckets):
    """The pairs of the 300 most frequent words (the lowest ids) take as many rows as a random hash would give
    them, whatever the bucket count; the linear hash crowded them into 3a + b rows at 1,000,000 and 2,000,000."""
    words = torch.arange(300)
    pairs = torch.cartesian_prod(words, words)  # (90,000, 2)
    rows = ngrams.ngram_rows(pairs, 2, buckets, ngram_hash="squared").flatten()
    expected_distinct = buckets * (1 - (1 - 1 / buckets) ** len(pairs))  # a uniformly random hash's
    assert rows.unique().numel() >= 0.98 * expected_distinct
    if buckets % 1_000_000 == 0:
        assert ngrams.ngram_rows(pairs, 2, buckets, ngram_hash="linear").unique().numel() < 0.03 * len(pairs)


def test_fasttext_ngram_hash_is_checked():
    with pytest.raises(ConfigError, match="ngram_hash must be one of squared, linear"):
        build_model("fasttext", ngram_hash="crc")


def test_fasttext_reads_word_order_only_through_its_ngrams():
    torch.manual_seed(0)
    ids, lengths = torch.tensor([[3, 4, 5, 6]]), torch.tensor([4])
    shuffled = torch.tensor([[6, 4, 3, 5]])
    words_only, pairs = _small_model("fasttext", ngrams=1).eval(), _small_model("fasttext", ngrams=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(words_only(ids, lengths).logits, words_only(shuffled, lengths).logits)
        assert (pairs(ids, lengths).logits - pairs(shuffled, lengths).logits).abs().item() > 1e-4


def test_fasttext_config_checks_its_ngrams():
    with pytest.raises(ConfigError, match="ngrams must be at least 1"):
        build_model("fasttext", ngrams=0)
    with pytest.raises(ConfigError, match="pooling 'mean'"):
        build_model("fasttext", pooling="max")
    assert build_model("fasttext", ngrams=1).ngram_embedding is None
    with pytest.raises(ConfigError, match="ngram_init"):
        build_model("fasttext", ngram_init=-0.1)


def test_fasttext_ngram_vectors_start_in_their_own_range():
    model = build_model("fasttext", vocab_size=100, buckets=5000, ngram_init=1 / 128)
    assert float(model.ngram_embedding.weight.detach().abs().max()) <= 1 / 128
    assert float(model.ngram_embedding.weight.detach().abs().max()) > 0.9 / 128  # the whole range, not zeros
    assert float(model.embedding.weight.detach().abs().max()) > 1 / 128  # the word table keeps Keras's 0.05
