"""stdout for the commands: a reader that closes the pipe early (``airssys logs -f |
head``) ends a command quietly.

click turns a broken pipe (an ``OSError``) into exit status 1 before our entry point
sees it; writes to stdout through :func:`out_console` raise :class:`StdoutClosed`
instead, which the entry point answers with status 0 and no message.
"""

from __future__ import annotations

import sys
from typing import Any, Final

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


_PIPED_WIDTH: Final = 10_000


def out_console(**options: Any) -> Console:
    """A Rich console on stdout whose writes raise StdoutClosed on a broken pipe.

    Into a pipe or a file, lines are not wrapped (a table's digests and paths stay
    whole on their line, for grep and cut); on a terminal, the terminal's width."""
    file = _Stdout()
    if "width" not in options and not _isatty(file):
        options["width"] = _PIPED_WIDTH
    return Console(file=file, **options)  # type: ignore[arg-type]


def _isatty(file: _Stdout) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False


def own_words(error: Exception) -> None:
    """A usage error in the project's words: typer checks options with pydantic, whose
    wording ("Input should be ...", "Value error, ...") is rewritten here, naming the
    value given and what would be accepted."""
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        return
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    details: dict[str, Any] = {}
    if callable(errors):
        try:
            found = errors()
            details = dict(found[0]) if found else {}
        except Exception:  # whatever pydantic says, the message stays
            details = {}
    kind = str(details.get("type", ""))
    given = details.get("input")
    bounds = details.get("ctx") or {}
    shown = repr(given) if isinstance(given, str) else str(given)
    words = {
        "int_parsing": f"{shown} is not a whole number",
        "int_from_float": f"{shown} is not a whole number",
        "float_parsing": f"{shown} is not a number",
        "bool_parsing": f"{shown} is not true or false",
        "greater_than_equal": f"{shown} is too small; accepted: {bounds.get('ge')} or more",
        "greater_than": f"{shown} is too small; accepted: more than {bounds.get('gt')}",
        "less_than_equal": f"{shown} is too large; accepted: at most {bounds.get('le')}",
        "less_than": f"{shown} is too large; accepted: less than {bounds.get('lt')}",
    }
    if kind in words and given is not None:
        message = words[kind]
    message = message.replace("Value error, ", "").replace("Input should be", "must be")
    error.message = message  # type: ignore[attr-defined]
