"""Reading the capability tables (a manifest's ``[capabilities]``, a policy's levels).

Each reader takes the raw TOML value and a :class:`Where` that names the file and
the key, and returns a clean value or raises :class:`~airssys.errors.ManifestError`
naming the key and the accepted syntax. Nothing here touches the filesystem: host
paths are made absolute lexically.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NoReturn

from ..errors import ManifestError
from ..names import BAD_CHAR
from ..units import parse_size
from ..units import show as show
from ._hosts import HostPattern
from ._patterns import ADDRESS, TOPIC, SegmentPattern

KINDS: Final = ("messaging", "storage", "files", "network", "process")
MESSAGING_KEYS: Final = ("send", "publish", "subscribe")
STORAGE_KEYS: Final = ("buckets", "quota", "keys")
ANY_BUCKET: Final = "*"
ANY_COMMAND: Final = "*"
REST_ARGS: Final = "**"
MAX_KEYS: Final = 2**63 - 1
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}", re.ASCII)
BUCKET_RULE: Final = (
    "a bucket name is 1 to 63 lowercase letters, digits, '.', '-' or '_', starting with "
    "a letter or digit, or '*' for any of the component's own buckets"
)


def valid_bucket(name: object) -> bool:
    return isinstance(name, str) and _BUCKET.fullmatch(name) is not None


class Where:
    """Names a place in a file for error messages: ``<file>: <section>.<key>: ...``."""

    __slots__ = ("file", "section")

    def __init__(self, file: str, section: str) -> None:
        self.file = file
        self.section = section

    def fail(self, key: str, problem: str) -> NoReturn:
        place = ".".join(part for part in (self.section, key) if part)
        raise ManifestError(": ".join(part for part in (self.file, place, problem) if part))


def table(where: Where, key: str, value: object, accepted: tuple[str, ...]) -> Mapping[str, Any]:
    """``value`` as a table whose keys are all in ``accepted``."""
    if not isinstance(value, Mapping):
        where.fail(key, f"expected a table with keys {', '.join(accepted)}, got {show(value)}")
    for name in value:
        if name not in accepted:
            inner = f"{key}.{name}" if key else str(name)
            where.fail(inner, f"unknown key; accepted: {', '.join(accepted)}")
    return value


def items(where: Where, key: str, value: object, example: str) -> list[Any]:
    """``value`` as a list (a TOML array)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        where.fail(
            key, f"expected a list, e.g. {key.rsplit('.', 1)[-1]} = {example}, got {show(value)}"
        )
    return list(value)


def patterns(where: Where, key: str, value: object, sep: str) -> tuple[str, ...]:
    example = '["/app/*"]' if sep == "/" else '["orders.*"]'
    out = []
    for i, item in enumerate(items(where, key, value, example)):
        try:
            out.append(SegmentPattern.parse(item, sep).text)
        except ValueError as exc:
            where.fail(f"{key}[{i}]", str(exc))
    return tuple(dict.fromkeys(out))


def messaging(where: Where, value: object, *, every_key: bool) -> dict[str, tuple[str, ...]]:
    """The ``messaging`` table: ``send`` address patterns, ``publish`` and ``subscribe``
    topic patterns; with ``every_key`` a key left out reads as an empty list."""
    found = table(where, "messaging", value, MESSAGING_KEYS)
    return {
        key: patterns(where, f"messaging.{key}", found.get(key, []), sep)
        for key, sep in (("send", ADDRESS), ("publish", TOPIC), ("subscribe", TOPIC))
        if every_key or key in found
    }


def hosts(where: Where, key: str, value: object) -> tuple[HostPattern, ...]:
    out = []
    for i, item in enumerate(items(where, key, value, '["https://api.example.com"]')):
        try:
            out.append(HostPattern.parse(item))
        except ValueError as exc:
            where.fail(f"{key}[{i}]", str(exc))
    return tuple(dict.fromkeys(out))


def buckets(where: Where, key: str, value: object, *, globs: bool = False) -> tuple[str, ...]:
    """Bucket names, or '*'; with ``globs`` (ceilings) '*' may also stand inside a name."""
    out = []
    for i, item in enumerate(items(where, key, value, '["default", "cache"]')):
        name = item.replace("*", "x") if globs and isinstance(item, str) else item
        if item != ANY_BUCKET and not valid_bucket(name):
            rule = BUCKET_RULE + ("; '*' within a name matches any text" if globs else "")
            where.fail(f"{key}[{i}]", f"{show(item)} is not a bucket name; {rule}")
        out.append(item)
    return tuple(dict.fromkeys(out))


def size(where: Where, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        where.fail(key, f'expected a size such as "10MiB" or a number of bytes, got {show(value)}')
    amount = parse_size(value, where=f"{where.file}: {where.section}.{key}")
    if amount < 1:
        where.fail(key, f"{show(value)} is not a positive size")
    return amount


def count(where: Where, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEYS:
        where.fail(key, f"expected a whole number from 1 to 2**63-1, got {show(value)}")
    return value


def flag(where: Where, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        where.fail(key, f"expected true or false, got {show(value)}")
    return value


def _text(where: Where, key: str, value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        where.fail(key, f"expected {what} (a non-empty string), got {show(value)}")
    bad = BAD_CHAR.search(value)
    if bad is not None:
        where.fail(key, f"{show(value)} holds {bad.group()!r}; {what} has no control characters")
    return value


def host_path(
    where: Where,
    key: str,
    value: object,
    base_dir: str | os.PathLike[str] | None,
    *,
    absolute: bool,
) -> Path:
    """A host directory, made absolute against ``base_dir`` (lexically: no symlinks)."""
    text = _text(where, key, value, "a host directory")
    if absolute and not os.path.isabs(text):
        where.fail(key, f"{show(text)} is not an absolute path; a ceiling names host roots in full")
    joined = os.path.join(os.fspath(base_dir) if base_dir is not None else os.getcwd(), text)
    return Path(os.path.normpath(joined))


def guest_path(where: Where, key: str, value: object) -> str:
    """An absolute guest path, normalised (``/data``); no ``..``."""
    text = _text(where, key, value, "a guest path")
    if not text.startswith("/"):
        where.fail(
            key, f"{show(text)} is not absolute; a guest path starts with '/', e.g. \"/data\""
        )
    parts = [part for part in text.split("/") if part and part != "."]
    if ".." in parts:
        where.fail(key, f"{show(text)} holds '..'; write the guest path without it")
    return "/" + "/".join(parts)


def command(where: Where, key: str, value: object, *, any_allowed: bool = True) -> str:
    """An executable by absolute, normalised path, or '*' for any (policy ceilings
    only: ``any_allowed=False`` for what a component declares)."""
    text = _text(where, key, value, "an executable path")
    if text == ANY_COMMAND:
        if any_allowed:
            return text
        where.fail(
            key,
            "'*' is not an executable: a component names each program it runs by its "
            'full path, e.g. "/usr/bin/convert" (only a policy ceiling may say "*")',
        )
    if not os.path.isabs(text):
        where.fail(
            key,
            f"{show(text)} is not absolute; name the executable by its full path, "
            'e.g. "/usr/bin/convert"',
        )
    if os.path.normpath(text) != text:
        where.fail(key, f"{show(text)} is not in normal form; write {show(os.path.normpath(text))}")
    return text


def arg_patterns(where: Where, key: str, value: object) -> tuple[str, ...]:
    """Argument patterns: one per argument; '*' is any text within it; '**' (last) is any
    remaining arguments."""
    out: list[str] = []
    listed = items(where, key, value, '["-resize", "*", "**"]')
    for i, item in enumerate(listed):
        if not isinstance(item, str) or "\x00" in item:
            where.fail(
                f"{key}[{i}]",
                f"expected an argument pattern (a string without NUL), got {show(item)}",
            )
        if item == REST_ARGS and i != len(listed) - 1:
            where.fail(f"{key}[{i}]", "'**' (any remaining arguments) may only come last")
        out.append(item)
    return tuple(out)
