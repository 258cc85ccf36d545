"""What a package is: its tree, its version, its errors (the store's vocabulary).

Read by the installer (:mod:`._install`, which checks and builds a :class:`Package`)
and the store (:mod:`._store`, which keeps it); neither is needed to read this.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..errors import PackageInUse as PackageInUse
from ..errors import PackageNotFound as PackageNotFound
from ..errors import StoreError as StoreError
from ..errors import VersionConflict as VersionConflict

__all__ = (
    "MANIFEST",
    "MAX_PACKAGE_BYTES",
    "MAX_PACKAGE_FILES",
    "SEMVER_RULE",
    "TREE_FORMAT",
    "Installed",
    "Package",
    "PackageInUse",
    "PackageNotFound",
    "SemVer",
    "StoreError",
    "Tree",
    "TreeEntry",
    "VersionConflict",
    "check_relpath",
    "hash_file",
    "parse_version",
)

MAX_PACKAGE_BYTES: Final = 1 << 30
"""The most bytes a package's files may hold together (1 GiB)."""
MAX_PACKAGE_FILES: Final = 10_000
"""The most files (and directories) a package may hold."""
TREE_FORMAT: Final = "airssys-package/1"
MANIFEST: Final = "Component.toml"
HEX: Final = re.compile(r"[0-9a-f]{64}")
CHUNK: Final = 1 << 20
OPEN_READ: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FILE_MODES: Final = (0o644, 0o755)


# --- errors ---------------------------------------------------------------------------


# --- versions -------------------------------------------------------------------------

_SEMVER: Final = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?",
    re.ASCII,
)
_MAX_VERSION: Final = 128
SEMVER_RULE: Final = (
    "a semantic version: MAJOR.MINOR.PATCH with an optional -PRERELEASE and +BUILD "
    '(e.g. "1.2.3", "2.0.0-rc.1"; https://semver.org)'
)


@dataclass(frozen=True, slots=True)
class SemVer:
    """A parsed semantic version (semver.org 2.0.0). Compare with :attr:`precedence`:
    build metadata does not count, a pre-release sorts before its release."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @property
    def precedence(self) -> tuple[Any, ...]:
        # identifiers: numeric ones numerically and below alphanumeric ones (ASCII order);
        # a shorter list of equal identifiers sorts first (tuple order does that)
        ids = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, ids)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def parse_version(text: str) -> SemVer:
    """``"1.2.3-rc.1+build.5"`` -> SemVer; ValueError naming the rule for anything else
    (including a numeric pre-release identifier with a leading zero)."""
    match = _SEMVER.fullmatch(text) if isinstance(text, str) and len(text) <= _MAX_VERSION else None
    if match is None:
        raise ValueError(f"{text!r:.80} is not {SEMVER_RULE}")
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    for ident in pre:
        if ident.isdigit() and len(ident) > 1 and ident.startswith("0"):
            raise ValueError(
                f"{text!r:.80} is not {SEMVER_RULE}: the pre-release identifier {ident!r} "
                "has a leading zero"
            )
    build = tuple(match.group(5).split(".")) if match.group(5) else ()
    return SemVer(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre, build)


# --- what is stored -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Installed:
    """One installed package: ``name@version`` and what was recorded at install."""

    name: str
    version: str
    digest: str
    """sha256 (hex) of the package tree: names the package's exact bytes."""
    wasm_digest: str
    """sha256 (hex) of the wasm, as :attr:`airssys.runtime.Component.sha256` gives it."""
    signer: str | None
    """Key id of the trusted key that verified the whole package's signature at
    install, else None."""
    trust: str
    """``trusted`` or ``unknown``: decided when the entry is read, against the trust
    store of that moment (trusted only while :attr:`signer` is in it)."""
    source: str
    """Where it was installed from (a path, a URL with its sha256, a git URL@ref#commit)."""
    installed_at: float
    """Seconds since the epoch."""
    revoked: str | None = None
    """The signer's key id when that key is no longer in the trust store (the
    package is then ``unknown``), else None."""

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "wasm_digest": self.wasm_digest,
            "signer": self.signer,
            "trust": self.trust,
            "source": self.source,
            "installed_at": self.installed_at,
            "revoked": self.revoked,
        }


@dataclass(frozen=True, slots=True)
class TreeEntry:
    sha256: str
    mode: int
    """0o644, or 0o755 for an executable file."""
    size: int


@dataclass(frozen=True, slots=True)
class Tree:
    """What a package holds: files by relative POSIX path, and every directory."""

    files: Mapping[str, TreeEntry]
    dirs: tuple[str, ...]
    wasm: str
    """The wasm's relative path (the manifest is always ``Component.toml``)."""

    def encode(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces; its sha256 is the package digest."""
        body = {
            "format": TREE_FORMAT,
            "wasm": self.wasm,
            "dirs": sorted(self.dirs),
            "files": {
                path: {"sha256": e.sha256, "mode": e.mode, "size": e.size}
                for path, e in self.files.items()
            },
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.encode()).hexdigest()

    @classmethod
    def decode(cls, data: bytes, *, where: str) -> Tree:
        """Parse and check a tree blob; StoreError naming ``where`` when it is not one."""
        try:
            body = json.loads(data)
            if (
                not isinstance(body, dict)
                or body.get("format") != TREE_FORMAT
                or not isinstance(body.get("files"), dict)
                or not isinstance(body.get("dirs"), list)
            ):
                raise ValueError(f"not an {TREE_FORMAT} tree")
            files: dict[str, TreeEntry] = {}
            for path, entry in body["files"].items():
                digest, mode, size = entry["sha256"], entry["mode"], entry["size"]
                if not (
                    isinstance(digest, str)
                    and HEX.fullmatch(digest)
                    and mode in FILE_MODES
                    and type(size) is int
                    and size >= 0
                ):
                    raise ValueError(f"bad entry for {path!r:.80}")
                files[check_relpath(path)] = TreeEntry(digest, mode, size)
            dirs = tuple(check_relpath(d) for d in body["dirs"])
            wasm = body["wasm"]
            if MANIFEST not in files or wasm not in files:
                raise ValueError("the manifest or the wasm is missing")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"{where} is not a valid package tree: {exc}") from None
        return cls(files, dirs, wasm)


@dataclass(frozen=True, slots=True)
class Package:
    """A package ready to store: its tree, and where each file's bytes come from
    (bytes already read and checked, or a file to copy, checked against its digest
    while it is copied)."""

    name: str
    version: str
    tree: Tree
    contents: Mapping[str, bytes | Path] = field(repr=False)

    @property
    def digest(self) -> str:
        return self.tree.digest

    @property
    def wasm_digest(self) -> str:
        return self.tree.files[self.tree.wasm].sha256


_RELPATH_BAD: Final = re.compile("[\x00-\x1f\x7f\\\\\ud800-\udfff]")


def check_relpath(path: object) -> str:
    """A package-relative POSIX path: no empty, ``.`` or ``..`` part, not absolute, no
    control characters or backslashes. ValueError otherwise."""
    if not isinstance(path, str) or not path or len(path) > 4096:
        raise ValueError(f"bad path {path!r:.80}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or _RELPATH_BAD.search(path):
        raise ValueError(f"bad path {path!r:.80}")
    return path


def hash_file(path: Path, *, limit: int) -> tuple[str, int]:
    """The sha256 and size of a regular file, never through a symlink; StoreError when
    it is larger than ``limit``."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, OPEN_READ)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StoreError(f"{path} is not a regular file")
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise StoreError(f"{path} is larger than {limit} bytes")
            digest.update(chunk)
    return digest.hexdigest(), size
