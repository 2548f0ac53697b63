"""One training loop for every model: Keras's fit semantics, faster batches."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from seqlab.errors import ConfigError, RunError
from seqlab.evaluation.metrics import epoch_metrics, loss_from_logits, predicted_labels
from seqlab.evaluation.predicting import predict_logits
from seqlab.models.base import SequenceClassifier
from seqlab.models.dropout import thread_generator
from seqlab.models.kernels import load_loops
from seqlab.text.cache import EncodedSplit
from seqlab.training.batches import Batch, batch_indices, collate
from seqlab.training.config import TrainConfig
from seqlab.training.cpu import (default_shards, denormals_flushed, has_shared_dropout, prepare_process,
                                training_threads, worker_threads)
from seqlab.training.fused import fused_step
from seqlab.training.optimizers import build_optimizer


@dataclass
class History:
    """Per-epoch figures, named as Keras names them."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    perplexity: list[float] = field(default_factory=list)  # language modelling: exp(loss per next word)
    val_perplexity: list[float] = field(default_factory=list)

    def append(self, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            getattr(self, key).append(value)


class Reporter(Protocol):
    """What the loop tells the outside world; the CLI draws progress bars from it."""

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None: ...
    def advance(self, loss: float, accuracy: float) -> None: ...
    def end_epoch(self, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...


class Silent:
    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def advance(self, loss: float, accuracy: float) -> None:
        pass

    def end_epoch(self, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        pass


def split_validation(
    split: EncodedSplit, fraction: float, seed: int, copy: bool = True
) -> tuple[EncodedSplit, EncodedSplit | None]:
    """Shuffle with `seed`, then hold out the last `fraction`, as Keras's validation_split does
    on the already shuffled keras.datasets.imdb arrays. `copy=False` gives views that leave the
    token ids where they are (a memory-mapped corpus stays on disk)."""
    order = np.random.default_rng(seed).permutation(len(split))
    held = int(round(len(order) * fraction))
    take = split.take if copy else split.select
    if held == 0:
        return take(order), None
    return take(order[:-held]), take(order[-held:])


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def epoch_batches(lengths: np.ndarray, config: TrainConfig, epoch: int) -> list[np.ndarray]:
    """The batches of `epoch`, a pure function of (seed, epoch): a resumed run sees the same order."""
    return batch_indices(lengths, config.batch_size, np.random.default_rng([config.seed, epoch]), config.bucket)


@dataclass
class TrainState:
    """Where training stands; with the model, optimizer and RNG states it is all a resume needs."""

    epoch: int = 0  # epochs completed
    step: int = 0  # batches completed in the epoch under way
    loss_sum: float = 0.0  # running sums over the epoch under way, for Keras-style epoch figures
    correct: int = 0
    seen: int = 0
    epoch_seconds: float = 0.0  # time spent in the epoch under way before an interruption
    history: History = field(default_factory=History)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainState:
        return cls(**{**data, "history": History(**data["history"])})


def random_states() -> dict[str, torch.Tensor]:
    """The generators training draws from (dropout, initialisation): torch's CPU one and each GPU's."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states |= {f"cuda{i}": torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())}
    return states


def set_random_states(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["torch"])
    for key, state in states.items():
        if key.startswith("cuda") and torch.cuda.is_available() and int(key[4:]) < torch.cuda.device_count():
            torch.cuda.set_rng_state(state, int(key[4:]))


def _callback_key(place: int, callback: Callback) -> str:
    return f"{place}:{type(callback).__name__}"


class Callback:
    """Hooks into the loop (checkpoints, early stopping, schedules); all optional. A callback that
    remembers something across epochs returns it from state_dict, so a resumed run has it back."""

    def on_batch_end(self, trainer: Trainer) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Objective(Protocol):
    """What the loop minimises and how it reports it (classification here; language modelling in
    training/language.py): the one seam between the loop and an objective."""

    def weight(self, batch: Batch) -> int: ...
    def loss(self, logits: torch.Tensor, batch: Batch, total: int) -> tuple[torch.Tensor, int]: ...
    def logs(self, loss: float, accuracy: float, prefix: str = "") -> dict[str, float]: ...
    def evaluate(self, trainer: Trainer, split: EncodedSplit) -> dict[str, float]: ...


class Classification:
    """The objective of classifiers: cross-entropy of each text's label, figures per text."""

    steps_fused = True  # the loss a model's own SGD step (training/fused.py) minimises

    def weight(self, batch: Batch) -> int:
        """How many predictions `batch` holds: its mean loss is its summed loss over this."""
        return len(batch)

    def loss(self, logits: torch.Tensor, batch: Batch, total: int) -> tuple[torch.Tensor, int]:
        """`batch`'s share of the mean loss over `total` predictions (its own, or a whole batch's that
        it is a piece of), from its `logits` (batch, outputs); and how many predictions were right."""
        return loss_from_logits(logits, batch.labels) * (len(batch) / total), _correct(logits, batch.labels)

    def logs(self, loss: float, accuracy: float, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}loss": loss, f"{prefix}accuracy": accuracy}

    def evaluate(self, trainer: Trainer, split: EncodedSplit) -> dict[str, float]:
        logits = predict_logits(trainer.model, split, trainer.config.eval_batch_size, trainer.shards)
        return epoch_metrics(logits, torch.from_numpy(split.labels))


class Trainer:
    """One loop for every model: the configured optimizer + cross-entropy, Keras's fit semantics."""

    def __init__(
        self,
        model: SequenceClassifier,
        train: EncodedSplit,
        validation: EncodedSplit | None,
        config: TrainConfig,
        reporter: Reporter | None = None,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        objective: Objective | None = None,
    ):
        from seqlab.training.groups import parameter_groups

        self.model = model
        self.objective: Objective = objective or Classification()
        self.network: torch.nn.Module = model  # what the training forward pass calls (DistributedDataParallel wraps `model`)
        self.train = train
        self.validation = validation if validation is not None and len(validation) else None
        self.config = config
        self.reporter = reporter or Silent()
        self.callbacks = list(callbacks)
        self.device = next(model.parameters()).device
        self.trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        self.optimizer = build_optimizer(model, parameter_groups(model, self.trainable, config), config)
        self.shards = config.shards or default_shards(model, self.device)
        if self.shards > 1 and self.device.type != "cpu":
            raise ConfigError("shards split batches over CPU threads; on a GPU leave shards unset")
        if self.shards > 1 and has_shared_dropout(model):
            raise ConfigError(f"shards={self.shards} needs a model whose dropout masks come from models/dropout.py "
                              "(the transformer's attention dropout and stacked nn.LSTM dropout draw from one shared "
                              "generator, and threads drawing at once would make runs unrepeatable); leave shards unset")
        self.pool: ThreadPoolExecutor | None = None  # the shards' threads while fit runs
        self.state = TrainState()
        self.stop = False  # a callback sets this to end training after the current epoch
        torch.manual_seed(config.seed)

    def state_dict(self) -> dict:
        """Everything a resume needs: with the same data and config, `load_state_dict` then `fit`
        continues as if never stopped. Batch order is a pure function of (seed, epoch), so the
        position (epoch, step) stands for it. "random" holds one set of random states per process;
        "stop" is an early stop already decided."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "state": self.state.to_dict(), "random": [random_states()], "callbacks": self.callbacks_state(),
                "stop": self.stop}

    def load_state_dict(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state = TrainState.from_dict(saved["state"])
        self.load_random_states(saved["random"])
        self.load_callbacks_state(saved["callbacks"])
        self.stop = saved["stop"]

    def load_random_states(self, per_process: list[dict[str, torch.Tensor]]) -> None:
        """One process carries on with the generators of the first process that wrote the checkpoint."""
        set_random_states(per_process[0])

    def callbacks_state(self) -> dict[str, dict]:
        """What each callback remembers (best weights so far, the schedule's position), keyed by
        its place and kind: a resumed run builds the same callbacks in the same order."""
        return {_callback_key(place, callback): callback.state_dict() for place, callback in enumerate(self.callbacks)}

    def load_callbacks_state(self, saved: dict[str, dict]) -> None:
        for place, callback in enumerate(self.callbacks):
            if _callback_key(place, callback) in saved:
                callback.load_state_dict(saved[_callback_key(place, callback)])

    def fit(self) -> History:
        if self.device.type == "cpu":
            prepare_process()  # as the seqlab command does: oneDNN's kernel cache and the heaps (training/cpu.py)
        flushed = denormals_flushed() if self.device.type == "cpu" else nullcontext()
        load_loops(self.model)  # here, not on a share's thread (models/kernels.py)
        with flushed, training_threads(self.model, self.device), worker_threads(self.shards) as self.pool:
            try:
                for epoch in range(self.state.epoch + 1, self.config.epochs + 1):
                    if self.stop:  # set by a callback, or by a resumed checkpoint that had stopped early
                        break
                    self.run_epoch(epoch)
            finally:
                self.pool = None
        self.check_finite()
        self.model.eval()
        return self.state.history

    def run_epoch(self, epoch: int) -> dict[str, float]:
        state, config = self.state, self.config
        started = time.perf_counter() - state.epoch_seconds
        self.model.train()
        batches = self.epoch_batches(epoch)
        self.reporter.start_epoch(epoch, config.epochs, len(batches))
        for indices in batches[state.step :]:
            batch = collate(self.train, indices).to(self.device)
            loss, correct = self.train_step(batch)
            weight = self.objective.weight(batch)
            state.step += 1
            state.loss_sum += loss * weight
            state.correct += correct
            state.seen += weight
            state.epoch_seconds = time.perf_counter() - started
            self.reporter.advance(state.loss_sum / state.seen, state.correct / state.seen)
            for callback in self.callbacks:
                callback.on_batch_end(self)
        loss_sum, correct, seen = self.reduce_sums(state.loss_sum, state.correct, state.seen)
        logs = self.objective.logs(loss_sum / max(seen, 1), correct / max(seen, 1))
        if self.validation is not None:
            scores = self.evaluate(self.validation)
            logs |= self.objective.logs(scores["loss"], scores["accuracy"], "val_")
            self.model.train()
        logs["seconds"] = time.perf_counter() - started
        state.history.append(logs)
        state.epoch, state.step, state.loss_sum, state.correct, state.seen, state.epoch_seconds = epoch, 0, 0.0, 0, 0, 0.0
        self.reporter.end_epoch(epoch, config.epochs, logs)
        for callback in self.callbacks:
            callback.on_epoch_end(self, logs)
        return logs

    # Seams for distributed training (training/distributed.py): which batches this process
    # runs, how per-process sums combine, and how a split is evaluated.
    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return epoch_batches(self.train.lengths, self.config, epoch)

    def reduce_sums(self, loss_sum: float, correct: int, seen: int) -> tuple[float, int, int]:
        return loss_sum, correct, seen

    def evaluate(self, split: EncodedSplit) -> dict[str, float]:
        """The validation figures of an epoch (Classification: loss, accuracy); the full metrics come at the end (pipeline)."""
        return self.objective.evaluate(self, split)

    def train_step(self, batch: Batch) -> tuple[float, int]:
        """One gradient step; returns the batch's mean loss and number of correct predictions."""
        fused = fused_step(self)
        if fused is not None:
            loss, correct = fused(batch)
            if not math.isfinite(loss):
                raise self.diverged(f"the loss became {loss}")
            return loss, correct
        self.optimizer.zero_grad(set_to_none=True)
        if self.pool is None:
            logits = self._forward(batch)  # (batch, outputs)
            mean_loss, correct = self.objective.loss(logits, batch, max(self.objective.weight(batch), 1))
            mean_loss.backward()
            loss = float(mean_loss.detach())
        else:
            loss, correct = self._sharded_backward(batch)
        if not math.isfinite(loss):
            raise self.diverged(f"the loss became {loss}")
        if self.config.clip_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
            if not math.isfinite(float(norm)):
                raise self.diverged(f"the gradients' norm became {float(norm)}")
        self.optimizer.step()
        return loss, correct

    def check_finite(self) -> None:
        """Weights that hold NaN or infinity are never kept (checkpoints and the run call this before writing)."""
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                if not bool(torch.isfinite(parameter).all()):
                    state = self.state
                    where = (f"after batch {state.step} of epoch {state.epoch + 1}" if state.step else
                             f"after epoch {state.epoch}")
                    raise self.diverged(f"the weights {name!r} are no longer finite numbers", where)

    def diverged(self, what: str, where: str = "") -> RunError:
        """Training cannot go on: nothing of this state is saved; checkpoints written before it are kept."""
        where = where or f"at epoch {self.state.epoch + 1}, batch {self.state.step + 1}"
        return RunError(f"training diverged {where}: {what}, so "
                        f"no run was saved (earlier checkpoints are kept). Retrain with a lower --learning-rate "
                        f"(it is {self.config.learning_rate:g}) or with --clip-norm 1")

    def _forward(self, batch: Batch) -> torch.Tensor:
        """Training logits (batch, outputs), in float32 whatever the precision of the pass."""
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.config.precision == "bfloat16"):
            return self.network(batch.ids, batch.lengths).logits.float()

    def _sharded_backward(self, batch: Batch) -> tuple[float, int]:
        """Each share of the batch on its own thread; their gradients summed in a fixed order."""
        assert self.pool is not None  # train_step shards a batch only while fit's threads run
        pieces = batch.split(self.shards)
        seeds = [int(np.random.SeedSequence([self.config.seed, self.state.epoch, self.state.step, shard]).generate_state(1)[0])
                 for shard in range(len(pieces))]  # each share's dropout masks: a function of where training stands
        total = max(self.objective.weight(batch), 1)
        shares = list(self.pool.map(self._shard_gradients, pieces, [total] * len(pieces), seeds))
        for position, parameter in enumerate(self.trainable):
            gradients = [gradient for share in shares if (gradient := share[2][position]) is not None]
            parameter.grad = sum(gradients[1:], gradients[0]) if gradients else None
        return sum(share[0] for share in shares), sum(share[1] for share in shares)

    def _shard_gradients(self, piece: Batch, total: int, seed: int) -> tuple[float, int, tuple[torch.Tensor | None, ...]]:
        """On a worker thread: the gradient of `piece`'s share of the batch's mean loss (`total`: the
        batch's predictions)."""
        with thread_generator(seed):
            logits = self._forward(piece)  # (piece, outputs)
        loss, correct = self.objective.loss(logits, piece, total)
        gradients = torch.autograd.grad(loss, self.trainable, allow_unused=True)
        return float(loss.detach()), correct, gradients


def _correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    with torch.no_grad():
        return int((predicted_labels(logits) == labels).sum())
