"""The content-addressed package store: immutable, verified, crash-safe.

Layout, under ``<data dir>/store/`` (data dir: ``$AIRSSYS_DATA_DIR``, else the XDG
data home ``airssys``; see :func:`airssys.storage.default_data_dir`)::

    blobs/sha256/<hex>          every file of every package, and each package's tree
    index.sqlite                name -> version -> digests, signer, trust, source, time
    checkouts/<package digest>/ read-only copies of packages, usable as a ComponentSource
    tmp/                        blobs being written (a crashed writer's are swept by gc)
    lock                        flock'ed by every writer

A **package** is a component folder: Component.toml, its wasm and every other file
in the folder. Each file is stored as a blob named by the sha256 of its bytes; the
**tree** (canonical JSON: relative path -> sha256, mode and size, and every
directory) is a blob too, and its sha256 is the **package digest**.

Guarantees:

* **Immutable**: a blob is never rewritten with other bytes (its name is its
  digest); ``name@version`` always means the same package digest: installing other
  bytes under an installed version is refused (:class:`VersionConflict`).
* **Verified on every read**: a blob's bytes are hashed whenever they are read
  (:meth:`Store.read_blob`, a tree, a checkout) and a mismatch is a
  :class:`StoreError` naming the blob. :meth:`Store.path` checks the checkout
  against the tree each time it is asked for one.
* **Crash-safe**: a blob is written to ``tmp/``, fsynced and renamed into place;
  the index row is written last, in one sqlite transaction (WAL, synchronous=FULL)
  after every blob is durable. A crash leaves either the whole package or no entry;
  orphan blobs are harmless and :meth:`Store.gc` removes them.
* **Concurrent**: writers (install, uninstall, checkout, gc) hold an exclusive
  ``flock`` on ``lock``; readers need no lock (WAL readers see the last commit).
* **Trust decided at use**: the index records who signed a package (the trusted key
  that verified its whole-package signature at install); :meth:`Store.get`,
  :meth:`Store.versions` and :meth:`Store.list` check that key against the trust
  store *now*. A key removed from it makes its packages ``unknown``
  (:attr:`Installed.revoked` names it), with a warning naming the key and, when the
  store has an audit log, a ``trust`` record. Installing the same bytes again after
  trusting their signer's key records the signer.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import fcntl
import hashlib
import os
import secrets
import shutil
import sqlite3
import stat
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._dirs import airssys_dir, fsync_dir
from .._logging import get_logger
from ..security import DENY
from ._install import install_package
from ._package import (
    CHUNK,
    HEX,
    MAX_PACKAGE_BYTES,
    OPEN_READ,
    Installed,
    Package,
    PackageInUse,
    PackageNotFound,
    StoreError,
    Tree,
    VersionConflict,
    hash_file,
    parse_version,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..security import AuditLog
    from ._keys import PublicKey
    from ._trust import TrustStore

__all__ = ("GcResult", "Store", "revocation_reason", "split_spec", "trusted_key_ids")

_TMP_PREFIX: Final = ".tmp-"
_OPEN_LOCK: Final = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS packages (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    wasm_digest TEXT NOT NULL,
    signer TEXT,
    trust TEXT NOT NULL,
    source TEXT NOT NULL,
    installed_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
"""
_COLUMNS: Final = "name, version, digest, wasm_digest, signer, trust, source, installed_at"
TRUST_KIND: Final = "trust"
"""The audit kind of a package whose signer is no longer trusted."""
_log = get_logger("airssys.lifecycle.store")


def trusted_key_ids(trust: TrustStore | Sequence[PublicKey] | None) -> frozenset[str]:
    """The key ids ``trust`` trusts now (None: the configured trust store)."""
    from ._keys import key_id
    from ._trust import TrustStore

    if trust is None or isinstance(trust, TrustStore):
        return frozenset(k.key_id for k in (trust or TrustStore()).list())
    return frozenset(key_id(k) for k in trust)


def revocation_reason(spec: str, key: str) -> str:
    """What a package whose signer's key left the trust store is told."""
    return (
        f"{spec}: its signer's key {key} is no longer in the trust store; "
        "it is unknown now (it was trusted at install)"
    )


def _precedence(version: str) -> tuple[Any, ...]:
    try:
        return parse_version(version).precedence
    except ValueError:  # never stored, but an index edited by hand must not crash us
        return (-1, version)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"echo@1.0.0"`` -> ``("echo", "1.0.0")``; ``"echo"`` -> ``("echo", None)``."""
    name, sep, version = spec.partition("@")
    if not name or (sep and not version):
        raise ValueError(f"{spec!r:.80} is not NAME or NAME@VERSION (e.g. echo@0.1.0)")
    return name, version if sep else None


@dataclass(frozen=True, slots=True)
class GcResult:
    """What :meth:`Store.gc` removed."""

    blobs: int
    bytes: int
    checkouts: int
    temporaries: int


# --- files ------------------------------------------------------------------------------


def _make_dir(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)


def remove_tree(path: Path) -> None:
    """Remove a directory tree, read-only directories included (missing: nothing)."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    for top, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(top, 0o700)
    shutil.rmtree(path)


# --- the store ------------------------------------------------------------------------


class Store:
    """The installed packages under ``<data_dir>/store`` (see the module docstring).

    ``data_dir`` None: ``$AIRSSYS_DATA_DIR``, else the XDG data home ``airssys``.
    ``trust``: the trusted keys installs are verified against and packages are
    trusted by when read (None: the configured trust store, read each time).
    ``audit``: where a package found no longer trusted is recorded (kind ``trust``).
    Nothing is created until something is written. Safe to share between threads
    and processes: every operation opens its own sqlite connection.
    """

    def __init__(
        self,
        data_dir: str | PathLike[str] | None = None,
        *,
        trust: TrustStore | Sequence[PublicKey] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.root = Path(data_dir if data_dir is not None else airssys_dir("data")) / "store"
        self._blobs = self.root / "blobs" / "sha256"
        self._checkouts = self.root / "checkouts"
        self._tmp = self.root / "tmp"
        self._index = self.root / "index.sqlite"
        self._ready = False
        self.trust = trust
        self.audit = audit
        self._told: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"Store({str(self.root.parent)!r})"

    # --- install / uninstall ------------------------------------------------------------

    def install(
        self,
        source: str | PathLike[str],
        *,
        trust: TrustStore | Sequence[PublicKey] | None = None,
        ref: str | None = None,
        subdir: str | None = None,
        sha256: str | None = None,
    ) -> Installed:
        """Install a component folder, a ``.tar.gz`` of one (a path or an ``http(s)://``
        URL), or a git repository (``git+...`` or a URL ending in ``.git``, at ``ref``);
        see :mod:`airssys.lifecycle._install`. Everything is checked (manifest, wasm,
        signature against ``trust``, default: the configured trust store) before
        anything is written. The same bytes again return the existing entry."""
        return install_package(
            self,
            source,
            trust=trust if trust is not None else self.trust,
            ref=ref,
            subdir=subdir,
            sha256=sha256,
        ).installed

    def add(
        self, package: Package, *, signer: str | None, trust: str, source: str
    ) -> tuple[Installed, bool]:
        """Store a checked package: its blobs, its tree, then its index row (in one
        transaction). Returns the entry and whether it is new; the same digest under the
        same version returns the existing entry (rewriting any of its blobs found
        corrupt). Raises VersionConflict when
        the version is installed with another digest."""
        self._ensure()
        with self._locked():
            same: Installed | None = None
            for existing in self._rows("WHERE name = ?", (package.name,)):
                if _precedence(existing.version) != _precedence(package.version):
                    continue
                if existing.digest == package.digest and existing.version == package.version:
                    same = existing
                    break
                raise VersionConflict(
                    f"{existing.spec} is already installed with digest "
                    f"sha256:{existing.digest}; versions are immutable: bump the version "
                    f"(this package is sha256:{package.digest})"
                )
            written: set[Path] = set()
            # also when it is installed already: a blob found corrupt is written afresh
            for path, entry in sorted(package.tree.files.items()):
                self._put(entry.sha256, package.contents[path], written)
            self._put(package.digest, package.tree.encode(), written)
            for directory in written:
                fsync_dir(directory)
            if same is not None:
                if signer is not None and signer != same.signer:
                    same = self._record_signer(same, signer, trust)
                return same, False
            installed = Installed(
                name=package.name,
                version=package.version,
                digest=package.digest,
                wasm_digest=package.wasm_digest,
                signer=signer,
                trust=trust,
                source=source,
                installed_at=time.time(),
            )
            self._commit(installed)
        _log.info(
            "package installed",
            package=installed.spec,
            digest=installed.digest,
            trust=trust,
            signer=signer,
        )
        return installed, True

    def _record_signer(self, installed: Installed, signer: str, trust: str) -> Installed:
        """The same package installed again, now verified by a trusted key: record it."""
        with self._connect() as db:
            db.execute(
                "UPDATE packages SET signer = ?, trust = ? WHERE name = ? AND version = ?",
                (signer, trust, installed.name, installed.version),
            )
        _log.info("package signer recorded", package=installed.spec, signer=signer)
        return dataclasses.replace(installed, signer=signer, trust=trust)

    def _commit(self, installed: Installed) -> None:
        """The index row: the last write of an install, in one transaction."""
        with self._connect() as db:
            db.execute(
                f"INSERT INTO packages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    installed.name,
                    installed.version,
                    installed.digest,
                    installed.wasm_digest,
                    installed.signer,
                    installed.trust,
                    installed.source,
                    installed.installed_at,
                ),
            )

    def uninstall(
        self,
        name: str,
        version: str | None = None,
        *,
        running: Collection[str] = frozenset(),
        force: bool = False,
    ) -> builtins.list[Installed]:
        """Remove ``name@version`` (every version when ``version`` is None) from the
        index; returns what was removed. Its blobs stay until :meth:`gc`.

        ``running`` names what runs now, as ``name`` or ``name@version`` (the node
        passes its actors' packages); a match is refused with PackageInUse unless
        ``force``. PackageNotFound when nothing matches."""
        targets = (
            [self._get(name, version, self._versions(name))]
            if version is not None
            else self._versions(name)
        )
        if not targets:
            raise PackageNotFound(f"no package named {name!r} is installed")
        busy = [t.spec for t in targets if t.name in running or t.spec in running]
        if busy and not force:
            raise PackageInUse(
                f"{', '.join(busy)} is running; stop it first, or force the uninstall"
            )
        with self._locked(), self._connect() as db:
            for target in targets:
                db.execute(
                    "DELETE FROM packages WHERE name = ? AND version = ?",
                    (target.name, target.version),
                )
        for target in targets:
            _log.info("package uninstalled", package=target.spec, digest=target.digest)
        return targets

    # --- queries ------------------------------------------------------------------------

    def list(self) -> builtins.list[Installed]:
        """Every installed package: by name, then version (lowest first); trust as of
        now (see the module docstring)."""
        rows = self._rows("", ())
        return self._now(sorted(rows, key=lambda r: (r.name, _precedence(r.version), r.version)))

    def versions(self, name: str) -> builtins.list[Installed]:
        """The installed versions of ``name``, lowest first (empty when none); trust as
        of now."""
        return self._now(self._versions(name))

    def get(self, name: str, version: str | None = None) -> Installed:
        """``name@version``, or the highest installed version (semver precedence)
        when ``version`` is None. ``version`` matches exactly, else by precedence
        (``1.0.0`` finds ``1.0.0+build.7``). PackageNotFound otherwise. Its trust is
        decided now, against the trust store."""
        return self._now([self._get(name, version, self._versions(name))])[0]

    def _versions(self, name: str) -> builtins.list[Installed]:
        rows = self._rows("WHERE name = ?", (name,))
        return sorted(rows, key=lambda r: (_precedence(r.version), r.version))

    def _get(self, name: str, version: str | None, versions: builtins.list[Installed]) -> Installed:
        if not versions:
            raise PackageNotFound(f"no package named {name!r} is installed")
        if version is None:
            return versions[-1]
        for row in versions:
            if row.version == version:
                return row
        try:
            wanted = parse_version(version).precedence
        except ValueError:
            wanted = None
        for row in versions:
            if wanted is not None and _precedence(row.version) == wanted:
                return row
        have = ", ".join(r.version for r in versions)
        raise PackageNotFound(f"{name}@{version} is not installed; installed versions: {have}")

    # --- trust at use ---------------------------------------------------------------------

    def _now(self, rows: builtins.list[Installed]) -> builtins.list[Installed]:
        """``rows`` with their trust decided against the trust store as it is now."""
        if not any(r.signer for r in rows):
            return rows  # nothing signed: the trust store is not even read
        trusted = trusted_key_ids(self.trust)
        out = []
        for row in rows:
            if row.signer is None or row.signer in trusted:
                out.append(row)
                continue
            out.append(dataclasses.replace(row, trust="unknown", revoked=row.signer))
            self._tell(row, row.signer)
        return out

    def _tell(self, row: Installed, key: str) -> None:
        """Warn (and audit) once per store object that ``row``'s signer left the trust store."""
        if (row.spec, key) in self._told:
            return
        self._told.add((row.spec, key))
        reason = revocation_reason(row.spec, key)
        _log.warning("package signer no longer trusted", package=row.spec, key=key)
        if self.audit is not None:
            self.audit.record(
                row.spec,
                TRUST_KIND,
                f"{row.spec} signed by {key}",
                DENY,
                reason,
                version=row.version,
                digest=row.digest,
                trust="unknown",
            )

    def tree(self, installed: Installed) -> Tree:
        """The package's tree (read from its blob, verified)."""
        return Tree.decode(self.read_blob(installed.digest), where=f"the tree of {installed.spec}")

    # --- blobs --------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        if not HEX.fullmatch(digest):
            raise ValueError(f"{digest!r:.80} is not a sha256 digest (64 lowercase hex digits)")
        return self._blobs / digest

    def read_blob(self, digest: str) -> bytes:
        """A blob's bytes, checked against its digest (StoreError naming it when they
        differ or it is missing)."""
        path = self.blob_path(digest)
        with _reading(digest, path):
            fd = os.open(path, OPEN_READ)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"blob sha256:{digest} ({path}) is not a regular file")
            data = f.read(MAX_PACKAGE_BYTES + 1)
        _check_digest(digest, hashlib.sha256(data).hexdigest(), path)
        return data

    def _verify_blob_file(self, digest: str, path: Path) -> None:
        """Hash ``path`` (a blob or a link to one) and compare it with ``digest``."""
        with _reading(digest, path):
            actual, _size = hash_file(path, limit=MAX_PACKAGE_BYTES)
        _check_digest(digest, actual, path)

    def _blob_intact(self, digest: str) -> bool:
        try:
            self._verify_blob_file(digest, self._blobs / digest)
        except StoreError as exc:
            if os.path.lexists(self._blobs / digest):
                _log.warning("replacing a corrupt blob", blob=digest, error=str(exc))
            return False
        return True

    def _put(self, digest: str, content: bytes | Path, written: set[Path]) -> None:
        """Make the blob ``digest`` hold ``content`` (checked against it): temp file,
        fsync, rename. An intact blob already there is kept."""
        if self._blob_intact(digest):
            return
        hasher = hashlib.sha256()
        tmp = self._tmp / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(content, bytes):
                    hasher.update(content)
                    out.write(content)
                else:
                    src_fd = os.open(content, OPEN_READ)
                    with os.fdopen(src_fd, "rb") as src:
                        while chunk := src.read(CHUNK):
                            hasher.update(chunk)
                            out.write(chunk)
                if hasher.hexdigest() != digest:
                    raise StoreError(
                        f"{content if isinstance(content, Path) else 'a file'} changed while "
                        f"it was being installed (sha256 {hasher.hexdigest()}, expected "
                        f"{digest}); nothing was installed"
                    )
                out.flush()
                os.fchmod(out.fileno(), 0o444)
                os.fsync(out.fileno())
            os.replace(tmp, self._blobs / digest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        written.add(self._blobs)

    # --- checkouts ----------------------------------------------------------------------

    def path(self, installed: Installed, *, verify: bool = True) -> Path:
        """A read-only checkout of the package (a folder with Component.toml and its
        wasm, usable as a ComponentSource), made once from verified blobs. Each call
        checks it against the tree (unless ``verify`` is false) and remakes it when it
        was changed; a corrupt blob is a StoreError naming it."""
        tree = self.tree(installed)
        checkout = self._checkouts / installed.digest
        if checkout.is_dir() and (not verify or self._checkout_intact(checkout, tree)):
            return checkout
        self._ensure()
        with self._locked():
            if checkout.is_dir() and self._checkout_intact(checkout, tree):
                return checkout
            if os.path.lexists(checkout):
                _log.warning("remaking a changed checkout", package=installed.spec)
                remove_tree(checkout)
            staging = self._checkouts / f"{_TMP_PREFIX}{installed.digest}-{os.getpid()}"
            remove_tree(staging)
            try:
                self._materialise(staging, tree)
                os.rename(staging, checkout)
            except BaseException:
                with contextlib.suppress(OSError):
                    remove_tree(staging)
                raise
            fsync_dir(self._checkouts)
        return checkout

    def _materialise(self, target: Path, tree: Tree) -> None:
        os.mkdir(target, 0o700)
        for directory in sorted(tree.dirs):
            os.mkdir(target / directory, 0o700)
        for rel, entry in sorted(tree.files.items()):
            dest = target / rel
            blob = self._blobs / entry.sha256
            linked = False
            if entry.mode == 0o644:  # blobs are 0444: a link shares the inode and mode
                try:
                    os.link(blob, dest, follow_symlinks=False)
                    linked = True
                except FileNotFoundError:
                    self._verify_blob_file(entry.sha256, blob)  # says it is missing
                except OSError:
                    pass  # another filesystem, or links not allowed: copy instead
            if not linked:
                self._copy_blob(entry.sha256, dest, 0o444 if entry.mode == 0o644 else 0o555)
            else:
                self._verify_blob_file(entry.sha256, blob)  # the same inode as dest
        for directory in sorted(tree.dirs, reverse=True):  # deepest first
            os.chmod(target / directory, 0o555)
        os.chmod(target, 0o555)

    def _copy_blob(self, digest: str, dest: Path, mode: int) -> None:
        blob = self._blobs / digest
        hasher = hashlib.sha256()
        try:
            src_fd = os.open(blob, OPEN_READ)
        except FileNotFoundError:
            raise StoreError(
                f"blob sha256:{digest} is missing from the store ({blob}); reinstall the package"
            ) from None
        with os.fdopen(src_fd, "rb") as src, open(dest, "xb") as out:
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
            os.fchmod(out.fileno(), mode)
        _check_digest(digest, hasher.hexdigest(), blob)

    def _checkout_intact(self, checkout: Path, tree: Tree) -> bool:
        """Does the checkout hold exactly the tree, read-only? (logs what differs)"""
        files: set[str] = set()
        dirs: set[str] = set()
        problem = ""
        try:
            if stat.S_IMODE(os.lstat(checkout).st_mode) != 0o555:
                problem = "the checkout directory is writable"
            for top, dirnames, filenames in os.walk(checkout):
                rel_top = os.path.relpath(top, checkout)
                for name in dirnames:
                    rel = name if rel_top == "." else f"{rel_top}/{name}"
                    st = os.lstat(os.path.join(top, name))
                    if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o555:
                        problem = problem or f"{rel} is not a read-only directory"
                    dirs.add(rel)
                for name in filenames:
                    rel = name if rel_top == "." else f"{rel_top}/{name}"
                    files.add(rel)
                    entry = tree.files.get(rel)
                    st = os.lstat(os.path.join(top, name))
                    if entry is None:
                        problem = problem or f"{rel} is not in the package"
                    elif not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != (
                        0o444 if entry.mode == 0o644 else 0o555
                    ):
                        problem = problem or f"{rel} is not a read-only file"
                    elif st.st_size != entry.size or (
                        hash_file(Path(top, name), limit=MAX_PACKAGE_BYTES)[0] != entry.sha256
                    ):
                        problem = problem or f"{rel} does not match its digest"
            if not problem and (files != set(tree.files) or dirs != set(tree.dirs)):
                problem = "files or directories are missing"
        except (OSError, StoreError) as exc:
            problem = str(exc)
        if problem:
            _log.warning("checkout differs from its package", path=str(checkout), problem=problem)
        return not problem

    # --- garbage ------------------------------------------------------------------------

    def gc(self) -> GcResult:
        """Remove blobs no installed package refers to (left by uninstall or a crashed
        install), checkouts of uninstalled packages and stale temporary files. A
        corrupt tree stops it (StoreError) before anything is removed. Do not remove a
        package's checkout while a component started from it still runs."""
        if not self.root.is_dir():
            return GcResult(0, 0, 0, 0)
        self._ensure()
        blobs = size = checkouts = temporaries = 0
        with self._locked():
            live: set[str] = set()
            packages: set[str] = set()
            for row in self._rows("", ()):
                live.add(row.digest)
                packages.add(row.digest)
                live.update(e.sha256 for e in self.tree(row).files.values())
            for entry in os.scandir(self._tmp):
                remove_tree(Path(entry.path))
                temporaries += 1
            for entry in os.scandir(self._blobs):
                if entry.name in live:
                    continue
                if entry.name.startswith(_TMP_PREFIX) or HEX.fullmatch(entry.name):
                    size += entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                    blobs += 1
            for entry in os.scandir(self._checkouts):
                if entry.name.startswith(_TMP_PREFIX):
                    remove_tree(Path(entry.path))
                    temporaries += 1
                elif HEX.fullmatch(entry.name) and entry.name not in packages:
                    remove_tree(Path(entry.path))
                    checkouts += 1
        result = GcResult(blobs, size, checkouts, temporaries)
        _log.info(
            "store garbage collected",
            blobs=blobs,
            bytes=size,
            checkouts=checkouts,
            temporaries=temporaries,
        )
        return result

    # --- plumbing -----------------------------------------------------------------------

    def _ensure(self) -> None:
        """Create the layout (private directories) and the index."""
        if self._ready:
            return
        try:
            self.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for directory in (self.root, self.root / "blobs", self._blobs):
                _make_dir(directory)
            _make_dir(self._checkouts)
            _make_dir(self._tmp)
            # one creator at a time: sqlite answers a second connection switching
            # to WAL at the same moment with "database is locked", without waiting
            with self._flock(), self._connect(create=True):
                pass
        except OSError as exc:
            raise StoreError(f"cannot create the package store at {self.root}: {exc}") from exc
        self._ready = True

    @contextmanager
    def _connect(self, *, create: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction: committed on success, rolled back on error."""
        try:
            db = sqlite3.connect(self._index, timeout=60.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store index {self._index}: {exc}") from exc
        try:
            db.execute("PRAGMA busy_timeout = 60000")
            if create:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(_SCHEMA)
            db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"the store index {self._index} failed: {exc}") from exc
        finally:
            db.close()

    def _rows(self, where: str, args: tuple[Any, ...]) -> builtins.list[Installed]:
        if not self._index.is_file():
            return []
        try:
            db = sqlite3.connect(self._index, timeout=60.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store index {self._index}: {exc}") from exc
        try:
            db.execute("PRAGMA busy_timeout = 60000")
            rows = db.execute(f"SELECT {_COLUMNS} FROM packages {where}", args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # created, never written (a crash at creation)
                return []
            raise StoreError(f"cannot read the store index {self._index}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store index {self._index}: {exc}") from exc
        finally:
            db.close()
        return [Installed(*row) for row in rows]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The writers' exclusive lock (released if the process dies)."""
        self._ensure()
        with self._flock():
            yield

    @contextmanager
    def _flock(self) -> Iterator[None]:
        try:
            fd = os.open(self.root / "lock", _OPEN_LOCK, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the store lock {self.root / 'lock'}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


@contextmanager
def _reading(digest: str, path: Path) -> Iterator[None]:
    """A blob that cannot be opened, as a StoreError naming it (missing or unreadable)."""
    try:
        yield
    except FileNotFoundError:
        raise StoreError(
            f"blob sha256:{digest} is missing from the store ({path}); reinstall the package"
        ) from None
    except OSError as exc:
        raise StoreError(f"blob sha256:{digest} cannot be read ({path}): {exc}") from exc


def _check_digest(expected: str, actual: str, path: Path) -> None:
    if actual != expected:
        raise StoreError(
            f"blob sha256:{expected} is corrupt: its bytes hash to sha256:{actual} ({path}); "
            "uninstall and reinstall the package that holds it (then `gc`)"
        )
