"""Run under torchrun by test_distributed.py: train from a prepared corpus, optionally dying on the way.

    python -m torch.distributed.run --nproc-per-node 2 ddp_worker.py PREPARED OUT CHECKPOINT [--die-at STEP]
"""

import argparse
import os

from seqlab.data.sources import DataSource
from seqlab.pipeline import prepare, train_model
from seqlab.training import distributed
from seqlab.training.fit import Callback, TrainConfig

SETTINGS = {"epochs": 2, "batch_size": 32, "validation_split": 0.2, "seed": 5}
MODEL = {"embedding_dim": 32, "hidden_size": 16}


class DieAt(Callback):
    """Process 1 exits abruptly (no cleanup, as a killed process would) at global step `step` of epoch 2."""

    def __init__(self, step: int):
        self.step = step

    def on_batch_end(self, trainer):
        if trainer.state.epoch == 1 and trainer.state.step == self.step and distributed.current().rank == 1:
            os._exit(17)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("prepared")
    parser.add_argument("out")
    parser.add_argument("checkpoint")
    parser.add_argument("--die-at", type=int)
    args = parser.parse_args()
    callbacks = [DieAt(args.die_at)] if args.die_at else []
    train_model("lstm", prepare(DataSource(data=args.prepared)).corpus, TrainConfig(**SETTINGS), out=args.out, callbacks=callbacks,
                checkpoint=args.checkpoint, checkpoint_steps=10, **MODEL)
