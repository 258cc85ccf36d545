"""Compile cache: in memory by content hash, on disk as serialized artifacts.

A disk entry is keyed by (wasm sha256, wasmtime version, engine settings). Each
file carries a digest of its own body, checked before wasmtime sees the bytes:
``Component.deserialize`` trusts its input, so a flipped bit must never reach it.
A corrupt, truncated or mismatched entry is recompiled and replaced. Writes go
to a temporary file in the same directory and are renamed into place.

The directory holds native code that will be executed, so:

* it is created private (0700); a cache directory, or a directory above it, that
  another user could write (group/world-writable without the sticky bit, or owned
  by someone other than this user or root), and an entry another user could write,
  are refused with :class:`~airssys.errors.CacheError` naming the path and the fix
  (the checks, shared with the build cache, are :mod:`airssys._private_files`);
* an entry is read only if it is a regular file (never through a symlink, never
  blocking on a FIFO) no larger than a bound; anything else standing there (a
  directory, a FIFO, a symlink) is logged and replaced by a fresh compile;
* one process compiles a given component at a time: the others wait on a per-entry
  lock file (``flock``) and then reuse its artifact;
* temporary files left by a writer that died mid-write are removed when the cache
  is first used and after each write.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Final

import wasmtime
from wasmtime import component as wc

from .._dirs import airssys_dir
from .._logging import get_logger
from .._private_files import check_tree, make_room, read_entry
from .._progress import phase
from ..errors import CacheError

__all__ = ("CacheStats", "CompileCache", "default_cache_dir")

WASMTIME_VERSION = _dist_version("wasmtime")
_MAGIC: Final = b"AIRSSYS-CWASM-1\n"
_DIGEST: Final = 32
# an artifact is a few times its wasm; anything far larger is not ours
_ENTRY_BOUND_MIN: Final = 64 << 20
_ENTRY_BOUND_PER_WASM_BYTE: Final = 32
_TMP_PREFIX: Final = ".tmp-"
# a temporary file is abandoned when its writer is dead and it has not changed for
# a minute, or when it has not changed for an hour (a writer in another pid namespace)
_STALE_DEAD_WRITER_S: Final = 60.0
_STALE_ANY_S: Final = 3600.0
# waiting for another process's compile; past this, compile here as well
_LOCK_WAIT_S: Final = 600.0
_OPEN_LOCK: Final = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_log = get_logger("airssys.runtime.cache")


def default_cache_dir() -> Path:
    """``$AIRSSYS_CACHE_DIR``, else ``$XDG_CACHE_HOME/airssys``, else ``~/.cache/airssys``
    (the rules of :mod:`airssys._dirs`: a relative ``$XDG_CACHE_HOME`` is ignored)."""
    return airssys_dir("cache")


def entry_bound(wasm_size: int) -> int:
    """The largest disk entry read back for a component of ``wasm_size`` bytes."""
    return _ENTRY_BOUND_MIN + _ENTRY_BOUND_PER_WASM_BYTE * wasm_size


class CacheStats:
    """Counters: where each compiled component came from."""

    __slots__ = ("compiled", "disk_hits", "memory_hits", "replaced", "stale_removed")

    def __init__(self) -> None:
        self.memory_hits = 0
        self.disk_hits = 0
        self.compiled = 0
        self.replaced = 0
        self.stale_removed = 0

    def __repr__(self) -> str:
        return (
            f"CacheStats(memory_hits={self.memory_hits}, disk_hits={self.disk_hits}, "
            f"compiled={self.compiled}, replaced={self.replaced}, "
            f"stale_removed={self.stale_removed})"
        )


# --- who may write the cache ---------------------------------------------------------


def _refuse(path: str, why: str, fix: str) -> CacheError:
    return CacheError(
        f"refusing the compile cache at {path!r}: {why}, and the cache holds native "
        f"code that airssys executes. Fix: {fix}; or point AIRSSYS_CACHE_DIR (or "
        "Runtime(cache_dir=...)) at a private directory, or use Runtime(disk_cache=False)"
    )


def _make_private(directory: Path) -> None:
    """Create ``directory`` and any missing parents, each readable by this user only."""
    missing: list[Path] = []
    current = directory
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        # another process may make it first; it is checked like any other
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)


# --- temporary files left behind ------------------------------------------------------


def _writer_pid(name: str) -> int | None:
    """The pid in ``.tmp-<pid>-<random>.cwasm``; None for any other name."""
    head = name[len(_TMP_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isascii() and head.isdigit() and len(head) < 10 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    return True


def _is_stale(name: str, age: float) -> bool:
    if age > _STALE_ANY_S:
        return True
    pid = _writer_pid(name)
    return age > _STALE_DEAD_WRITER_S and pid is not None and not _alive(pid)


class CompileCache:
    """Turns wasm bytes into a compiled ``wasmtime.component.Component``, once."""

    def __init__(self, engine: wasmtime.Engine, settings_key: str, directory: Path | None) -> None:
        self._engine = engine
        self._settings = hashlib.sha256(
            f"wasmtime-{WASMTIME_VERSION}|{settings_key}".encode()
        ).hexdigest()[:16]
        self.directory = directory
        self._memory: dict[str, wc.Component] = {}
        self._lock = threading.Lock()
        self._swept = False
        self._unusable_reported = False
        self.stats = CacheStats()

    def entry_path(self, wasm_sha256: str) -> Path | None:
        """Where the serialized artifact for this wasm digest lives (None: no disk cache)."""
        if self.directory is None:
            return None
        return self.directory / f"{wasm_sha256}-{self._settings}.cwasm"

    def get(self, wasm: bytes) -> tuple[str, wc.Component]:
        """The compiled component for ``wasm`` and its sha256; compiles on a miss.

        Raises ``wasmtime.WasmtimeError`` when the bytes are not a valid component,
        and :class:`~airssys.errors.CacheError` when the disk cache is unsafe.
        """
        digest = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            hit = self._memory.get(digest)
            if hit is not None:
                self.stats.memory_hits += 1
                return digest, hit
        component = self._from_disk_or_compile(digest, wasm)
        with self._lock:
            self._memory.setdefault(digest, component)
            return digest, self._memory[digest]

    def clear_memory(self) -> None:
        """Forget the in-memory entries (the disk cache stays)."""
        with self._lock:
            self._memory.clear()

    def _compile(self, wasm: bytes) -> wc.Component:
        component = wc.Component(self._engine, wasm)
        self.stats.compiled += 1
        return component

    def _compile_saying(self, wasm: bytes, why: str) -> wc.Component:
        """:meth:`_compile`, reported as a progress phase with the cache's word on why."""
        size = f"{len(wasm) / 1e6:.1f} MB" if len(wasm) >= 1e5 else f"{len(wasm)} B"
        with phase("compile", detail=f"{size}; {why}"):
            return self._compile(wasm)

    def _from_disk_or_compile(self, digest: str, wasm: bytes) -> wc.Component:
        path = self.entry_path(digest)
        if path is None:
            return self._compile_saying(wasm, "the disk cache is off")
        if not self._open():
            return self._compile_saying(wasm, "the cache directory is unusable")
        bound = entry_bound(len(wasm))
        # the lock is held across load-or-compile-and-store: whoever waited on it
        # finds the artifact its holder wrote
        with self._entry_lock(path):
            component, why = self._load_disk(path, bound)
            if component is not None:
                return component
            component = self._compile_saying(wasm, why)
            self._store_disk(path, component, bound)
        self._sweep(path.parent)
        return component

    # --- the directory ------------------------------------------------------------------

    def _open(self) -> bool:
        """Create the directory private and check it; False when it cannot be used.

        Raises CacheError when it (or a directory above it) is writable by others.
        """
        directory = self.directory
        assert directory is not None
        try:
            _make_private(directory)
            real = check_tree(directory, _refuse)
        except OSError as exc:
            # an unusable cache directory costs speed, never correctness
            if not self._unusable_reported:
                self._unusable_reported = True
                _log.warning("cache directory unusable", path=str(directory), error=str(exc))
            return False
        if not self._swept:
            self._sweep(real)
        return True

    def _sweep(self, directory: Path) -> None:
        """Remove temporary files whose writer died mid-write."""
        self._swept = True
        now = time.time()
        try:
            entries = [e for e in os.scandir(directory) if e.name.startswith(_TMP_PREFIX)]
        except OSError:
            return
        for entry in entries:
            try:
                if _is_stale(entry.name, now - entry.stat(follow_symlinks=False).st_mtime):
                    os.unlink(entry.path)
                    self.stats.stale_removed += 1
                    _log.info("stale cache temporary removed", path=entry.path)
            except OSError:
                continue  # gone already, or not ours to remove

    @contextmanager
    def _entry_lock(self, path: Path) -> Iterator[None]:
        """Hold an exclusive ``flock`` on the entry's lock file (best effort)."""
        lock_path = path.with_suffix(".lock")
        try:
            fd = os.open(lock_path, _OPEN_LOCK, 0o600)
        except OSError as exc:  # read-only directory, or a symlink planted there
            _log.warning("cache lock unavailable", path=str(lock_path), error=str(exc))
            yield
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                _log.warning("cache lock is not a regular file", path=str(lock_path))
            elif not self._acquire(fd):
                _log.warning(
                    "waited too long for another process's compile; compiling here",
                    path=str(lock_path),
                )
            yield
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _acquire(fd: int) -> bool:
        deadline = time.monotonic() + _LOCK_WAIT_S
        pause = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    # --- entries ------------------------------------------------------------------------

    def _read_entry(self, path: Path, bound: int) -> bytes | None:
        """The entry's bytes if it is a regular file of at most ``bound`` bytes; None
        (and the entry is replaced by a fresh compile) for anything else there."""
        entry = read_entry(path, bound, _refuse)
        if entry.problem:
            _log.warning(
                f"cache entry {entry.problem}; recompiling", path=str(path), detail=entry.detail
            )
            self.stats.replaced += 1
        return entry.data

    def _load_disk(self, path: Path, bound: int) -> tuple[wc.Component | None, str]:
        """The cached component, or None and why not (the cache's word, for progress)."""
        present = path.exists()
        data = self._read_entry(path, bound)
        if data is None:
            return None, (
                "the cached copy was unusable" if present else "not in the compile cache yet"
            )
        head = len(_MAGIC) + _DIGEST
        body = memoryview(data)[head:]
        if (
            data[: len(_MAGIC)] != _MAGIC
            or hashlib.sha256(body).digest() != data[len(_MAGIC) : head]
        ):
            _log.warning("cache entry corrupt; recompiling", path=str(path))
            self.stats.replaced += 1
            return None, "the cached copy was corrupt"
        try:
            with phase("load compiled", detail="from the compile cache"):
                component = wc.Component.deserialize(self._engine, bytes(body))
        except wasmtime.WasmtimeError as exc:
            # intact file written by another wasmtime build or engine configuration
            _log.warning("cache entry mismatched; recompiling", path=str(path), error=str(exc))
            self.stats.replaced += 1
            return None, "the cached copy is for another wasmtime or engine setting"
        self.stats.disk_hits += 1
        return component, ""

    def _store_disk(self, path: Path, component: wc.Component, bound: int) -> None:
        body = bytes(component.serialize())
        if len(_MAGIC) + _DIGEST + len(body) > bound:
            _log.warning("compiled component too large to cache", path=str(path), bound=bound)
            return
        try:
            fd, tmp = tempfile.mkstemp(
                dir=path.parent, prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=".cwasm"
            )
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(_MAGIC)
                    f.write(hashlib.sha256(body).digest())
                    f.write(body)
                make_room(path)  # a directory there: a rename cannot replace it
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # a read-only or full cache directory costs speed, never correctness
            _log.warning("cache write failed", path=str(path), error=str(exc))
