import json

import numpy as np
import pytest
import safetensors.torch
import torch

from seqlab.errors import ConfigError
from seqlab.models import build_model
from seqlab.pipeline import train_model
from seqlab.training.callbacks import BestCheckpoint, EarlyStopping, LearningRateSchedule, training_callbacks
from seqlab.training.checkpoint import load_checkpoint, save_checkpoint
from seqlab.training.fit import Callback, TrainConfig, Trainer, split_validation


def _trainer(reviews, **options):
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=reviews.encoder.vocab_size, embedding_dim=16, hidden_size=8)
    train, validation = split_validation(reviews.train, 0.2, seed=0)
    trainer = Trainer(model, train, validation, TrainConfig(batch_size=64, **options))
    trainer.callbacks.extend(training_callbacks(trainer))
    return trainer


def test_lecture_defaults_add_nothing_but_the_best_checkpoint(synthetic):
    trainer = _trainer(synthetic)
    assert [type(c) for c in trainer.callbacks] == [BestCheckpoint]
    assert type(trainer.optimizer) is torch.optim.Adam and trainer.config.clip_norm is None


def test_cosine_schedule_anneals_to_zero_over_all_batches(synthetic):
    trainer = _trainer(synthetic, epochs=2, schedule="cosine")
    assert any(isinstance(c, LearningRateSchedule) for c in trainer.callbacks)
    trainer.fit()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_plateau_schedule_halves_when_validation_loss_rises(synthetic):
    trainer = _trainer(synthetic, epochs=6, schedule="plateau", learning_rate=0.05)
    history = trainer.fit()
    rises = sum(b >= a for a, b in zip(history.val_loss, history.val_loss[1:]))
    assert rises > 0  # this learning rate overfits 480 reviews quickly
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 ** rises)


def test_gradient_clipping_bounds_the_update(synthetic):
    from seqlab.training.batches import collate

    trainer = _trainer(synthetic, clip_norm=1e-3)
    batch = collate(trainer.train, np.arange(64))
    trainer.train_step(batch)
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.model.parameters() if p.grad is not None]))
    assert float(total) == pytest.approx(1e-3, rel=1e-3)


def test_weight_decay_uses_decoupled_adamw(synthetic):
    trainer = _trainer(synthetic, weight_decay=0.01)
    assert type(trainer.optimizer) is torch.optim.AdamW
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.01


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adam_updates_as_the_per_tensor_loop_does(weight_decay):
    from seqlab.training.optimizers import adam

    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=50, embedding_dim=8, hidden_size=4)
    config = TrainConfig(weight_decay=weight_decay, learning_rate=0.01)
    fused_parameters = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
    loop_parameters = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
    fused = adam(fused_parameters, config)
    loop = type(fused)(loop_parameters, lr=0.01, eps=config.adam_epsilon, weight_decay=weight_decay, foreach=False)
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    for _ in range(5):
        for a, b in zip(fused_parameters, loop_parameters):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        fused.step()
        loop.step()
    moved = [not torch.equal(a, p) for a, p in zip(fused_parameters, model.parameters())]
    assert all(moved)
    for a, b in zip(fused_parameters, loop_parameters):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_adam_falls_back_to_the_loop_without_a_fused_kernel(monkeypatch):
    from seqlab.training import optimizers

    class NoFusedKernel(torch.optim.Adam):
        def __init__(self, parameters, fused=None, **options):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
            super().__init__(parameters, **options)

    monkeypatch.setattr(optimizers.torch.optim, "Adam", NoFusedKernel)
    optimizer = optimizers.adam([torch.nn.Parameter(torch.ones(3))], TrainConfig())
    assert type(optimizer) is NoFusedKernel and not optimizer.defaults["fused"]


def test_patience_and_restore_best_add_early_stopping(synthetic):
    trainer = _trainer(synthetic, patience=2, restore_best=True, monitor="val_accuracy")
    stopper = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert (stopper.patience, stopper.restore_best, stopper.monitor) == (2, True, "val_accuracy")


@pytest.mark.parametrize("options,message", [
    ({"schedule": "step"}, "unknown schedule 'step'; choose one of none, plateau, cosine"),
    ({"clip_norm": 0.0}, "clip_norm must be positive"),
    ({"weight_decay": -1.0}, "weight_decay must be 0 or more"),
    ({"patience": 0}, "patience must be at least 1"),
    ({"precision": "float16"}, "unknown precision 'float16'; choose float32 or bfloat16"),
])
def test_bad_training_options(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options)


def test_early_stopping_needs_a_validation_split(synthetic):
    model = build_model("gru", vocab_size=synthetic.encoder.vocab_size, embedding_dim=8, hidden_size=4)
    trainer = Trainer(model, synthetic.train, None, TrainConfig(patience=1, validation_split=0.0))
    with pytest.raises(ConfigError, match="validation_split > 0"):
        training_callbacks(trainer)


def test_best_checkpoint_is_saved_in_the_run_directory(synthetic, tmp_path):
    from seqlab.evaluation.predicting import evaluate

    training = TrainConfig(epochs=4, batch_size=64, learning_rate=0.02)
    model, result = train_model("gru", synthetic, training, out=tmp_path / "run", embedding_dim=16, hidden_size=8)
    best = result.best_epoch
    assert best == 1 + int(np.argmin(result.history["val_loss"]))
    state = safetensors.torch.load_file(tmp_path / "run" / "best.safetensors")
    model.load_state_dict(state)
    _, validation = split_validation(synthetic.train, training.validation_split, training.seed)
    assert evaluate(model, validation)["loss"] == pytest.approx(result.history["val_loss"][best - 1], abs=1e-6)
    assert {"roc_auc", "f1", "accuracy", "loss"} <= set(result.test)


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_bfloat16_training_steps_close_to_float32_and_keeps_float32_weights(name, synthetic):
    from seqlab.training.batches import collate

    gradients = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        model = build_model(name, vocab_size=synthetic.encoder.vocab_size, embedding_dim=16, hidden_size=8)
        trainer = Trainer(model, synthetic.train, None, TrainConfig(precision=precision, shards=1))
        loss, _ = trainer.train_step(collate(synthetic.train, np.arange(64)))
        assert all(p.dtype == torch.float32 for p in model.parameters())
        gradients[precision] = (loss, torch.cat([p.grad.flatten() for p in model.parameters()]))
    (loss32, grad32), (loss16, grad16) = gradients["float32"], gradients["bfloat16"]
    assert loss16 == pytest.approx(loss32, abs=0.02)
    cosine = torch.nn.functional.cosine_similarity(grad32, grad16, dim=0)
    assert cosine > 0.95 and not torch.equal(grad32, grad16)  # the same direction, computed in another precision


class _SaveAfterEpoch(Callback):
    """Saves the trainer (in a real file format) after one epoch, as a run killed then would leave it."""

    def __init__(self, save, epoch: int):
        self.save, self.epoch = save, epoch

    def on_epoch_end(self, trainer, logs) -> None:
        if trainer.state.epoch == self.epoch:
            self.save(trainer)


def _checkpoint_files(directory):
    """(save, restore) through the one checkpoint format."""
    return (lambda trainer: save_checkpoint(directory, trainer.state_dict(), recipe={}, generation=1),
            lambda trainer: trainer.load_state_dict(load_checkpoint(directory).trainer_state))


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_a_resumed_run_keeps_its_schedule_and_best_weights(synthetic, tmp_path, schedule):
    """Oracle: the run never stopped. The schedule's position, the best epoch's weights and the
    early-stopping counter live in callbacks; a resume that lost them would end elsewhere."""
    options = {"epochs": 3, "schedule": schedule, "restore_best": True, "patience": 3, "monitor": "val_accuracy",
               "learning_rate": 0.02}
    save, restore = _checkpoint_files(tmp_path / "run.checkpoint")
    whole = _trainer(synthetic, **options)
    whole.callbacks.append(_SaveAfterEpoch(save, epoch=1))
    whole_history = whole.fit()

    resumed = _trainer(synthetic, **options)
    resumed.callbacks.append(_SaveAfterEpoch(lambda trainer: None, epoch=1))  # the same callbacks, in order
    restore(resumed)
    history = resumed.fit()
    assert history.loss == whole_history.loss and history.val_accuracy == whole_history.val_accuracy
    for mine, theirs in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(mine, theirs)
    best = [next(c for c in t.callbacks if isinstance(c, BestCheckpoint)) for t in (resumed, whole)]
    assert best[0].best_epoch == best[1].best_epoch
    assert all(torch.equal(best[0].state[key], best[1].state[key]) for key in best[1].state)


class _StopAfterEpoch(Callback):
    """Ends training after the first epoch, as early stopping does when it decides to."""

    def on_epoch_end(self, trainer, logs) -> None:
        trainer.stop = True


def test_a_run_that_stopped_early_stays_stopped_when_resumed(synthetic, tmp_path):
    save, restore = _checkpoint_files(tmp_path / "run.checkpoint")
    stopped = _trainer(synthetic, epochs=3)
    stopped.callbacks += [_StopAfterEpoch(), _SaveAfterEpoch(save, epoch=1)]  # killed after this checkpoint
    assert len(stopped.fit().loss) == 1
    resumed = _trainer(synthetic, epochs=3)
    restore(resumed)
    assert len(resumed.fit().loss) == 1  # no epoch trained past the decision to stop
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), stopped.model.parameters()))


def test_checkpoints_hold_infinite_figures(tmp_path):
    from seqlab.training.checkpoint import flatten, unflatten

    tensors: dict = {}
    tree = flatten({"best": float("inf"), "worse": -float("inf"), "steps": [1, 2.5]}, "", tensors)
    assert json.loads(json.dumps(tree, allow_nan=False))  # plain JSON
    restored = unflatten(tree, tensors)
    assert restored == {"best": float("inf"), "worse": -float("inf"), "steps": [1, 2.5]}
