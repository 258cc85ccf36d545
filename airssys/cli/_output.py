"""stdout for the commands: a reader that closes the pipe early (``airssys logs -f |
head``) ends a command quietly.

click turns a broken pipe (an ``OSError``) into exit status 1 before our entry point
sees it; writes to stdout through :func:`out_console` raise :class:`StdoutClosed`
instead, which the entry point answers with status 0 and no message.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

__all__ = ("StdoutClosed", "out_console")


class StdoutClosed(Exception):
    """stdout's reader went away (not an OSError, so click leaves it to us)."""


class _Stdout:
    """``sys.stdout`` (looked up at each write, as tests swap it), a broken pipe
    turned into :class:`StdoutClosed`."""

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except BrokenPipeError:
            raise StdoutClosed from None

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    def isatty(self) -> bool:
        return sys.stdout.isatty()

    def fileno(self) -> int:
        return sys.stdout.fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stdout, "encoding", None) or "utf-8"


def out_console(**options: Any) -> Console:
    """A Rich console on stdout whose writes raise StdoutClosed on a broken pipe."""
    return Console(file=_Stdout(), **options)  # type: ignore[arg-type]
