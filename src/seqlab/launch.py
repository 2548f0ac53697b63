"""`seqlab train --nproc N`: relaunch the same command under torchrun, one process per share."""

from __future__ import annotations

import os
import subprocess
import sys

from seqlab.errors import SeqlabError


def without_option(argv: list[str], name: str) -> list[str]:
    """`argv` less `--name VALUE` / `--name=VALUE`."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == name:
            skip = True
        elif not argument.startswith(name + "="):
            kept.append(argument)
    return kept


def torchrun_command(nproc: int, arguments: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "seqlab", *without_option(arguments, "--nproc")]


def relaunch_with_torchrun(nproc: int, arguments: list[str]) -> int:
    """Run the command on `nproc` processes; a process that fails ends all of them."""
    environment = dict(os.environ)
    # One thread per process unless told otherwise: more oversubscribes the cores.
    environment.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    code = subprocess.call(torchrun_command(nproc, arguments), env=environment)
    if code != 0:
        raise SeqlabError(
            f"distributed training failed: a process exited with an error and torchrun stopped the other "
            f"{nproc - 1} (exit code {code}; the failing process's message is above). Fix the cause, then "
            "`seqlab train --resume OUT` continues from the last checkpoint (on any number of processes)."
        )
    return 0
