"""Reading the files people write (manifests, policies, deployments): the text, the
TOML, the amounts in it, and how a value from it is quoted in an error.

A leaf: it imports only :mod:`airssys.errors`, so the manifest, the capability
schema (:mod:`airssys.security`), the node and the config all read them the same way.

* :func:`read_text` and :func:`parse_toml`: a file's UTF-8 text and its TOML; every
  failure is one error (a :class:`~airssys.errors.ManifestError` unless another class
  is given) naming the file;
* :func:`parse_size`: ``"4MiB"`` -> 4194304; integers are bytes; units B, KB, MB,
  GB, KiB, MiB, GiB; a refusal is a ManifestError naming where the size was read and
  what would be accepted;
* :func:`show`: a short, printable repr of any value, for error messages.
"""

from __future__ import annotations

import re
import tomllib
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any, Final

from .errors import ManifestError

__all__ = (
    "MAX_SIZE",
    "SIZE_RULE",
    "parse_size",
    "parse_toml",
    "read_text",
    "show",
    "size_amount",
)

_UNITS: Final = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE: Final = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", re.ASCII)
SIZE_RULE: Final = (
    "use a whole number of bytes or a string with a unit: B, KB, MB, GB, KiB, MiB, GiB "
    '(e.g. "4MiB")'
)
MAX_SIZE: Final = 2**64
"""Sizes go up to (not including) this many bytes."""


def show(value: object, limit: int = 60) -> str:
    """A short, printable repr of a value read from a file (or given by a caller); a
    long one is cut at ``limit`` characters and says how long the value was."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past the digit limit, deep nesting
        return f"a {type(value).__name__}"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(value if isinstance(value, str) else text)} characters)"


def parse_size(text: str | int, *, where: str = "size") -> int:
    """``"4MiB"`` -> 4194304. Integers are bytes. Units: B, KB, MB, GB, KiB, MiB, GiB.

    A fractional amount (``"1.5GB"``) is rounded down to whole bytes. Anything else,
    or an amount of 2**64 bytes or more, is a ManifestError naming ``where``.
    """
    amount = size_amount(text, where)
    if amount >= MAX_SIZE:
        raise ManifestError(f"{where}: {show(text)} is too large; sizes go up to 2**64 bytes")
    return int(amount)


def size_amount(text: object, where: str) -> int | Decimal:
    """The exact amount of bytes ``text`` names (unbounded: the caller checks the range)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        raise ManifestError(f"{where}: expected a size, got {show(text)}; {SIZE_RULE}")
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ManifestError(f"{where}: {show(text)} is not a size; {SIZE_RULE}")
    amount = Decimal(match.group(1)) * _UNITS[unit]  # exact for any sane size, never overflows
    return amount.to_integral_value(rounding=ROUND_FLOOR)


def read_text(path: Path, what: str, *, error: type[Exception] = ManifestError) -> str:
    """The UTF-8 text of ``path``, ``what`` it holds (``"the manifest"``) naming it in
    ``error``: ``<path>: cannot read the manifest: ...`` and the like."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text: {exc}") from exc
    except ValueError as exc:  # e.g. a NUL in the path
        raise error(f"{show(str(path))}: cannot read {what}: {exc}") from exc


def parse_toml(
    text: str, where: object, *, error: type[Exception] = ManifestError
) -> dict[str, Any]:
    """``text`` as TOML; ``error`` reading ``<where>: not valid TOML: ...`` otherwise."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise error(f"{where}: not valid TOML: nested too deeply") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer with too many digits
        raise error(f"{where}: not valid TOML: {exc}") from exc
