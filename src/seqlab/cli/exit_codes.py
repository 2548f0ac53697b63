"""What `seqlab` exits with, one code per kind of failure, so scripts can tell them apart."""

from __future__ import annotations

from enum import IntEnum

from seqlab.errors import ConfigError, DataError, RunError, SeqlabError


class ExitCode(IntEnum):
    DONE = 0
    FAILED = 1
    USAGE = 2  # click's own code for usage errors; ConfigError is one too
    DATA = 3  # DataError
    RUN = 4  # RunError
    INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


# Printed at the end of `seqlab --help` and listed in docs/cli.md.
MEANINGS = {
    ExitCode.DONE: "done",
    ExitCode.FAILED: "a run failed (compare: a model failed), or another error",
    ExitCode.USAGE: "usage: unknown command or option, or an option value seqlab cannot use",
    ExitCode.DATA: "data missing, corrupt or unusable",
    ExitCode.RUN: "run directory missing, incomplete, corrupt or from an incompatible version; training diverged; "
                  "a run could not be written",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
EPILOG = "Exit codes: " + "; ".join(f"{int(code)} {meaning}" for code, meaning in MEANINGS.items()) + "."


def exit_code(error: SeqlabError) -> ExitCode:
    """The code for an error seqlab raised: its kind decides."""
    for kind, code in ((ConfigError, ExitCode.USAGE), (DataError, ExitCode.DATA), (RunError, ExitCode.RUN)):
        if isinstance(error, kind):
            return code
    return ExitCode.FAILED
