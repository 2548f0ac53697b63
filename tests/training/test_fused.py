"""The fused SGD step (training/fused.py, the fasttext model's sgd_step) against autograd + torch.optim.SGD."""

import copy

import numpy as np
import pytest
import torch

from seqlab.models import build_model
from seqlab.training.batches import collate
from seqlab.training.config import TrainConfig
from seqlab.training.fit import Trainer
from seqlab.training.fused import fused_step


def _plain_steps(trainer: Trainer, batches) -> list[float]:
    """Training steps the ordinary way, whatever fused_step would choose."""
    losses = []
    for batch in batches:
        trainer.optimizer.zero_grad(set_to_none=True)
        logits = trainer.model(batch.ids, batch.lengths).logits  # (batch, outputs)
        loss, _ = trainer.objective.loss(logits, batch, len(batch))
        loss.backward()
        trainer.optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("options,classes", [
    ({"ngrams": 2, "sparse_gradients": True}, 2),
    ({"ngrams": 3}, 2),
    ({"ngrams": 2, "freeze_embeddings": True}, 2),
    ({"ngrams": 1}, 3),
    ({"ngrams": 2, "sparse_gradients": True}, 4),
    ({"ngrams": 2, "sparse_gradients": True, "binary": True}, 2),
])
def test_fused_steps_equal_autograd_and_sgd(synthetic, options, classes):
    torch.manual_seed(0)
    model = build_model("fasttext", vocab_size=synthetic.encoder.vocab_size, num_classes=classes, embedding_dim=8,
                        buckets=211, **options)
    twin, initial = copy.deepcopy(model), copy.deepcopy(model.state_dict())
    config = TrainConfig(optimizer="sgd", learning_rate=3.0, validation_split=0.0)
    split = synthetic.train
    labels = np.arange(len(split)) % classes  # every class present, so the softmax rows all move
    split = type(split)(split.encoded, labels.astype(split.labels.dtype))
    batches = [collate(split, np.arange(start, start + 16)) for start in range(0, 96, 16)]
    fused, plain = Trainer(model, split, None, config), Trainer(twin, split, None, config)
    assert fused_step(fused) is not None
    fused_losses = [fused.train_step(batch)[0] for batch in batches]
    plain_losses = _plain_steps(plain, batches)
    assert fused_losses == pytest.approx(plain_losses, abs=1e-5)
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert not torch.equal(model.head.weight, initial["head.weight"])
    frozen = torch.equal(model.embedding.weight, initial["embedding.weight"])
    assert frozen == bool(options.get("freeze_embeddings"))
    assert all(parameter.grad is None for parameter in model.parameters())  # no gradients were made


@pytest.mark.parametrize("model_options,training", [
    ({"output_dropout": 0.2}, {}),
    ({"word_dropout": 0.1}, {}),
    ({}, {"optimizer": "adam"}),
    ({}, {"clip_norm": 1.0}),
    ({}, {"precision": "bfloat16"}),
])
def test_what_the_fused_step_cannot_honour_takes_the_plain_path(synthetic, model_options, training):
    model = build_model("fasttext", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, buckets=97, **model_options)
    config = TrainConfig(**{"optimizer": "sgd", "learning_rate": 1.0, "validation_split": 0.0, **training})
    assert fused_step(Trainer(model, synthetic.train, None, config)) is None


def test_other_models_take_the_plain_path(synthetic):
    model = build_model("lstm", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, hidden_size=8)
    config = TrainConfig(optimizer="sgd", learning_rate=1.0, validation_split=0.0)
    assert fused_step(Trainer(model, synthetic.train, None, config)) is None


def test_sgd_with_momentum_takes_the_plain_path(synthetic):
    model = build_model("fasttext", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, buckets=97)
    trainer = Trainer(model, synthetic.train, None, TrainConfig(optimizer="sgd", learning_rate=1.0, validation_split=0.0))
    trainer.optimizer.param_groups[0]["momentum"] = 0.9
    assert fused_step(trainer) is None
