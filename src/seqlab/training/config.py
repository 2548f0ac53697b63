"""What a training run takes, declared once: the loop reads it, the CLI surfaces its defaults.

Nothing heavy is imported here, so `seqlab --help` can show the defaults without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqlab.errors import ConfigError

SCHEDULES = ("none", "plateau", "cosine", "slanted", "linear")
OPTIMIZERS = ("adam", "sgd", "adagrad")
PRECISIONS = ("float32", "bfloat16")


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training texts
    batch_size: int = 128  # texts per gradient step
    learning_rate: float = 1e-3  # the optimizer's step size (Keras's Adam default)
    optimizer: str = "adam"  # adam (Keras's), sgd (plain SGD: sparse gradients touch only their rows, as fastText's) or adagrad (per-weight rates; sparse gradients too)
    adam_epsilon: float = 1e-7  # Adam's epsilon (Keras default; PyTorch's is 1e-8)
    validation_split: float = 0.2  # share of the shuffled training texts held out, taken from the end as Keras does
    seed: int = 42  # seeds the split, initial weights, batch order and dropout
    bucket: bool = True  # batch texts of similar length together (less padding, same results)
    eval_batch_size: int = 512  # texts per batch when only predicting
    weight_decay: float = 0.0  # decoupled weight decay (AdamW); 0 keeps the lecture's plain Adam
    clip_norm: float | None = None  # clip the gradients' global norm to this; None never clips
    schedule: str = "none"  # learning-rate schedule: none, plateau (halve when val_loss stalls), cosine, slanted or linear (to 0; fastText's) (per batch)
    warmup: float = 0.1  # slanted schedule: share of all batches spent rising to the learning rate (ULMFiT's cut_frac)
    discriminative: float = 1.0  # each layer below the top learns this many times slower (ULMFiT: 2.6); 1: one rate
    gradual_unfreezing: bool = False  # epoch 1 trains the top layer only, each further epoch one layer more
    patience: int | None = None  # early stopping: stop after this many epochs without improvement; None never stops
    restore_best: bool = False  # end with the weights of the best validation epoch (by `monitor`)
    monitor: str = "val_loss"  # what early stopping, restore_best and the best checkpoint watch
    shards: int | None = None  # CPU: split each batch over this many threads of one core each; None: one per core (training/cpu.py)
    precision: str = "float32"  # bfloat16: forward passes under autocast (weights stay float32); faster on AMX CPUs and GPUs
    tensorboard: str | None = None  # a folder for TensorBoard scalars (per batch and epoch), one subfolder per model; None: none

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.learning_rate < 0:
            raise ConfigError(f"learning_rate must be 0 or more; got {self.learning_rate}")
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ConfigError(f"clip_norm must be positive; got {self.clip_norm}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be 0 or more; got {self.weight_decay}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be at least 1 epoch; got {self.patience}")
        if not 0 <= self.validation_split < 1:
            raise ConfigError(f"validation_split must be in [0, 1); got {self.validation_split}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose {' or '.join(PRECISIONS)}")
        if self.discriminative < 1:
            raise ConfigError(f"discriminative must be 1 (one rate) or more; got {self.discriminative}")
        if not 0 < self.warmup < 1:
            raise ConfigError(f"warmup must be a share of the batches in (0, 1); got {self.warmup}")
        if self.gradual_unfreezing and self.schedule in ("plateau", "cosine"):
            raise ConfigError(f"gradual_unfreezing sets the rates with the none or slanted schedule, not "
                              f"{self.schedule}; pass --schedule slanted")
        if self.shards is not None and self.shards < 1:
            raise ConfigError(f"shards must be at least 1; got {self.shards}")
        if self.tensorboard is not None:
            from seqlab.extras import require

            require("tensorboard", "--tensorboard")
