"""Run under torchrun by test_distributed.py: `seqlab train ...` whose process 1 dies at a given step.

    python -m torch.distributed.run --nproc-per-node 2 ddp_worker.py STEP train lstm ... --out OUT

Process 1 exits at global step STEP of epoch 2, on torchrun's first attempt only.
"""

import os
import sys

from seqlab import cli, pipeline
from seqlab.training import distributed
from seqlab.training.fit import Callback


class DieAt(Callback):
    """Process 1 exits abruptly (no cleanup, as a killed process would) at global step `step` of epoch 2."""

    def __init__(self, step: int):
        self.step = step

    def on_batch_end(self, trainer):
        if (trainer.state.epoch == 1 and trainer.state.step == self.step and distributed.current().rank == 1
                and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"):
            os._exit(17)


if __name__ == "__main__":
    step, sys.argv = int(sys.argv[1]), ["seqlab", *sys.argv[2:]]
    callbacks = pipeline.training_callbacks
    pipeline.training_callbacks = lambda trainer: [*callbacks(trainer), DieAt(step)]  # before the Checkpointer
    cli.main()
