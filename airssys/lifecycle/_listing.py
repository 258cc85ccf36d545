"""The package tree as a signature binds it: the *listing*.

A package is more than its wasm and Component.toml: its other files are mounted into
the component (``files`` grants) or read by it. The listing names every one of them
so that a signature over it covers the whole package. It is UTF-8 text, a header
line then one line per entry, sorted by path::

    airssys-package-tree/1
    f <sha256 hex> Component.toml
    f <sha256 hex> data/prices.csv
    x <sha256 hex> tools/convert.sh
    w - echo.wasm

``f``: a file (its SHA-256), ``x``: an executable file (its SHA-256; the executable
bit is the only part of a mode that counts), ``w``: the signed wasm itself (its
bytes are covered by the signature directly; it holds the listing, so it cannot
list its own digest). The wasm's detached signature (``<wasm>.sig``) is left out:
it is the signature, not a signed file. Directories are the ones the paths name;
an empty directory holds nothing and is not listed (git does not keep one either,
so a package cloned from git lists as the folder it was signed from). Paths are the
package's relative POSIX paths (no newline can occur in one).

:func:`listing` makes it from a :class:`~._package.Tree`; :func:`difference` tells,
naming the file, how the package found differs from the one signed.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..errors import SignatureError
from ._package import Tree

__all__ = ("LISTING_FORMAT", "difference", "listing", "listing_digest", "read_listing")

LISTING_FORMAT: Final = "airssys-package-tree/1"
FILE: Final = "f"
EXECUTABLE: Final = "x"
WASM: Final = "w"
_KINDS: Final = frozenset({FILE, EXECUTABLE, WASM})
_NONE: Final = "-"


def listing(tree: Tree) -> bytes:
    """The listing of a package tree (see the module docstring)."""
    entries: dict[str, tuple[str, str]] = {}
    signature = f"{tree.wasm}.sig"
    for path, entry in tree.files.items():
        if path == tree.wasm:
            entries[path] = (WASM, _NONE)
        elif path != signature:
            entries[path] = (EXECUTABLE if entry.mode & 0o111 else FILE, entry.sha256)
    lines = [LISTING_FORMAT]
    lines += [f"{kind} {digest} {path}" for path, (kind, digest) in sorted(entries.items())]
    return ("\n".join(lines) + "\n").encode("utf-8")


def listing_digest(data: bytes) -> str:
    """The SHA-256 (hex) of a listing: the package tree's digest as signed."""
    return hashlib.sha256(data).hexdigest()


def read_listing(data: bytes) -> dict[str, tuple[str, str]]:
    """path -> (kind, digest); SignatureError when ``data`` is not a listing."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise SignatureError("the signed package listing is not UTF-8 text") from None
    if not lines or lines[0] != LISTING_FORMAT or lines[-1] != "":
        raise SignatureError(f"the signed package listing is not an {LISTING_FORMAT} listing")
    entries: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(lines[1:-1], start=2):
        kind, _, rest = line.partition(" ")
        digest, _, path = rest.partition(" ")
        if kind not in _KINDS or not path or path in entries:
            raise SignatureError(f"the signed package listing is malformed at line {number}")
        entries[path] = (kind, digest)
    return entries


def difference(signed: bytes, found: bytes) -> str | None:
    """How the package ``found`` differs from the one ``signed`` (listings), naming
    the first file that differs by path; None when they are the same."""
    if signed == found:
        return None
    before, after = read_listing(signed), read_listing(found)
    problems: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if was == now:
            continue
        problems.append(_describe(path, was, now))
    if not problems:  # the same entries, written otherwise
        return "the package listing differs from the signed one"
    more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
    return problems[0] + more


def _describe(path: str, was: tuple[str, str] | None, now: tuple[str, str] | None) -> str:
    if was is None:
        return f"the file {path} was added after signing"
    if now is None:
        return f"the file {path} was removed after signing"
    if {was[0], now[0]} == {FILE, EXECUTABLE} and was[1] == now[1]:
        return f"the file {path} had its executable bit changed after signing"
    if WASM in (was[0], now[0]):
        return f"the file {path} was the wasm when signed, or became it (the wasm moved)"
    return f"the file {path} was changed after signing (its contents differ)"
