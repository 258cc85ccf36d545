"""``airssys completions SHELL``: print the shell completion script to stdout.

The script is Typer's (the one ``--install-completion`` writes), printed rather
than installed, so it can go wherever the shell looks::

    airssys completions bash > ~/.local/share/bash-completion/completions/airssys
    airssys completions zsh > "${fpath[1]}/_airssys"
    airssys completions fish > ~/.config/fish/completions/airssys.fish
    airssys completions powershell >> $PROFILE

It calls back into ``airssys`` with ``_AIRSSYS_COMPLETE`` set, so completions
follow the installed version's commands and choices.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

import typer

__all__ = ("COMPLETE_VAR", "Shell", "completion_script", "register_completions")

PROG: Final = "airssys"
COMPLETE_VAR: Final = "_AIRSSYS_COMPLETE"


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"
    POWERSHELL = "powershell"
    PWSH = "pwsh"


def completion_script(shell: Shell | str) -> str:
    """The completion script for ``shell`` (a :class:`Shell` value), ending in a newline."""
    from typer._completion_shared import get_completion_script

    name = Shell(shell).value  # ValueError for a shell Typer cannot complete in
    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=name) + "\n"


def completions(
    shell: Annotated[
        Shell,
        typer.Argument(
            metavar="SHELL",
            case_sensitive=False,
            help="bash, zsh, fish or powershell (pwsh).",
            show_default=False,
        ),
    ],
) -> None:
    """Print the shell completion script for SHELL to stdout.

    bash: airssys completions bash > ~/.local/share/bash-completion/completions/airssys
    (then open a new shell). zsh: into a folder on $fpath, as _airssys. fish:
    > ~/.config/fish/completions/airssys.fish. powershell: append to $PROFILE.
    """
    typer.echo(completion_script(shell), nl=False)


def register_completions(app: typer.Typer, *, epilog: str | None = None) -> None:
    """Add ``completions`` to ``app`` (once)."""
    if "completions" not in {info.name for info in app.registered_commands}:
        app.command("completions", epilog=epilog)(completions)
