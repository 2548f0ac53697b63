"""Shell completion for the `seqlab` command (typer's --show-completion / --install-completion)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

# The entry point as installed: the completion script is named after the program, `seqlab`.
PROGRAM = "import sys; sys.argv[0] = 'seqlab'; from seqlab.cli import main; main()"


def seqlab(*args: str, shell: bool = False, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", PROGRAM, *args]
    if shell:  # typer detects the shell from the processes above it
        command = ["bash", "-c", shlex.join(command) + "; exit $?"]  # two commands: bash stays their parent
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def test_show_completion_prints_the_script_for_the_shell_it_runs_in():
    result = seqlab("--show-completion", shell=True)
    assert result.returncode == 0, result.stderr
    assert "_seqlab_completion()" in result.stdout
    assert "complete -o default -F _seqlab_completion seqlab" in result.stdout


def test_a_named_shell_gets_its_own_script():
    result = seqlab(_SEQLAB_COMPLETE="source_zsh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith("#compdef seqlab")


def test_the_script_completes_commands_and_options():
    commands = seqlab(_SEQLAB_COMPLETE="complete_bash", COMP_WORDS="seqlab tr", COMP_CWORD="1")
    assert commands.stdout.split() == ["train"]
    options = seqlab(_SEQLAB_COMPLETE="complete_bash", COMP_WORDS="seqlab train --epo", COMP_CWORD="2")
    assert options.stdout.split() == ["--epochs"]
