"""The one prediction loop and the one metrics function: results in the texts' order however the
batches are cut, the model's mode left as it was, the figures worked out by hand, and many
processes scoring exactly what one process scores."""

import math

import numpy as np
import pytest
import torch

from seqlab.evaluation.metrics import metrics_from_logits
from seqlab.evaluation.predicting import batched_logits, predict_logits
from seqlab.models.kernels import predicting
from seqlab.models import build_model
from seqlab.text.cache import EncodedSplit
from seqlab.text.encoder import Encoded
from seqlab.training import distributed

pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic_split(texts: int = 37, vocab_size: int = 40, seed: int = 0) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, texts)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(3, vocab_size, int(offsets[-1])).astype(np.int32)
    return EncodedSplit(Encoded(ids, offsets, lengths.astype(np.int64)), rng.integers(0, 2, texts).astype(np.int64))


@pytest.mark.parametrize("batch_size,threads", [(1, 1), (8, 1), (5, 3), (512, 2)])
def test_every_text_gets_its_own_row_back(batch_size, threads):
    split = synthetic_split()

    def forward(batch):  # answers each text's position in the split, and its length
        return torch.stack([torch.from_numpy(batch.indices).float(), batch.lengths.float()], dim=1)

    logits = batched_logits(forward, split, batch_size, threads)
    assert logits[:, 0].tolist() == list(range(len(split)))
    assert logits[:, 1].tolist() == split.lengths.tolist()


def test_no_texts_give_no_rows():
    empty = synthetic_split().take(np.array([], dtype=np.int64))
    assert batched_logits(lambda batch: pytest.fail("no batch expected"), empty).shape == (0, 1)


def test_predicting_switches_dropout_off_and_restores_the_mode():
    model = build_model("gru", vocab_size=40, embedding_dim=8, hidden_size=4)
    for training in (True, False):
        model.train(training)
        with predicting(model):
            assert not model.training
        assert model.training == training
    model.train()
    with pytest.raises(RuntimeError), predicting(model):
        raise RuntimeError("a failed prediction")
    assert model.training


def test_predictions_ignore_dropout_and_batch_layout():
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=40, embedding_dim=8, hidden_size=4, output_dropout=0.5).train()
    split = synthetic_split()
    whole = predict_logits(model, split, batch_size=512, threads=1)
    assert model.training
    torch.testing.assert_close(predict_logits(model, split, batch_size=3, threads=2), whole, atol=1e-5, rtol=0)


def test_metrics_worked_out_by_hand():
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    labels = torch.tensor([1, 0, 0, 1])
    scores = metrics_from_logits(logits, labels, ["negative", "positive"])
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731 - -log sigmoid(-x)
    assert scores["accuracy"] == 0.5
    assert scores["loss"] == pytest.approx((softplus(-2) + softplus(-1) + softplus(0.5) + softplus(3)) / 4)
    assert scores["f1"] == 0.5  # one true positive, one false positive, one false negative
    assert scores["roc_auc"] == 0.5  # of the 4 (positive, negative) pairs, 2 are ordered right
    assert scores["recall"] == {"negative": 0.5, "positive": 0.5}


def test_metrics_of_several_classes_name_a_missing_class():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [3.0, 0.0, 0.0]])
    scores = metrics_from_logits(logits, torch.tensor([0, 1, 0, 0]))
    assert scores["accuracy"] == 0.75
    assert scores["recall"] == {"0": pytest.approx(2 / 3), "1": 1.0, "2": None}
    assert math.isnan(scores["roc_auc"])  # one-vs-rest needs every class present


def test_processes_gather_what_one_process_predicts(monkeypatch):
    """Each process predicts every N-th text; gathered, the rows are the one-process logits."""
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=40, embedding_dim=8, hidden_size=4).eval()
    split, world_size = synthetic_split(), 3

    def all_gather_object(shares, share):  # what every process of the group would send
        for rank in range(world_size):
            shares[rank] = predict_logits(model, split.select(np.arange(rank, len(split), world_size)), 8, threads=1)
        assert torch.equal(shares[1], share)

    monkeypatch.setattr(distributed.dist, "all_gather_object", all_gather_object)
    group = distributed.Group(rank=1, world_size=world_size, local_rank=1, device=torch.device("cpu"))
    gathered = distributed.distributed_logits(model, split, group, batch_size=8)
    torch.testing.assert_close(gathered, predict_logits(model, split, 8, threads=1), atol=1e-5, rtol=0)
