"""Compile cache: in memory by content hash, on disk as serialized artifacts.

A disk entry is keyed by (wasm sha256, wasmtime version, engine settings). Each
file carries a digest of its own body, checked before wasmtime sees the bytes:
``Component.deserialize`` trusts its input, so a flipped bit must never reach it.
A corrupt, truncated or mismatched entry is recompiled and replaced. Writes go
to a temporary file in the same directory and are renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from importlib.metadata import version as _dist_version
from pathlib import Path

import structlog
import wasmtime
from wasmtime import component as wc

__all__ = ("CacheStats", "CompileCache", "default_cache_dir")

WASMTIME_VERSION = _dist_version("wasmtime")
_MAGIC = b"AIRSSYS-CWASM-1\n"
_DIGEST = 32
_log = structlog.get_logger("airssys.runtime.cache")


def default_cache_dir() -> Path:
    """``$AIRSSYS_CACHE_DIR``, else ``$XDG_CACHE_HOME/airssys``, else ``~/.cache/airssys``."""
    env = os.environ.get("AIRSSYS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "airssys"


class CacheStats:
    """Counters: where each compiled component came from."""

    __slots__ = ("compiled", "disk_hits", "memory_hits", "replaced")

    def __init__(self) -> None:
        self.memory_hits = 0
        self.disk_hits = 0
        self.compiled = 0
        self.replaced = 0

    def __repr__(self) -> str:
        return (
            f"CacheStats(memory_hits={self.memory_hits}, disk_hits={self.disk_hits}, "
            f"compiled={self.compiled}, replaced={self.replaced})"
        )


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
        self.stats = CacheStats()

    def entry_path(self, wasm_sha256: str) -> Path | None:
        """Where the serialized artifact for this wasm digest lives (None: no disk cache)."""
        if self.directory is None:
            return None
        return self.directory / f"{wasm_sha256}-{self._settings}.cwasm"

    def get(self, wasm: bytes) -> tuple[str, wc.Component]:
        """The compiled component for ``wasm`` and its sha256; compiles on a miss.

        Raises ``wasmtime.WasmtimeError`` when the bytes are not a valid component.
        """
        digest = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            hit = self._memory.get(digest)
            if hit is not None:
                self.stats.memory_hits += 1
                return digest, hit
        component = self._load_disk(digest)
        if component is None:
            component = wc.Component(self._engine, wasm)
            self.stats.compiled += 1
            self._store_disk(digest, component)
        with self._lock:
            self._memory.setdefault(digest, component)
            return digest, self._memory[digest]

    def clear_memory(self) -> None:
        """Forget the in-memory entries (the disk cache stays)."""
        with self._lock:
            self._memory.clear()

    def _load_disk(self, digest: str) -> wc.Component | None:
        path = self.entry_path(digest)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.warning("cache entry unreadable", path=str(path), error=str(exc))
            return None
        head = len(_MAGIC) + _DIGEST
        body = memoryview(data)[head:]
        if (
            data[: len(_MAGIC)] != _MAGIC
            or hashlib.sha256(body).digest() != data[len(_MAGIC) : head]
        ):
            _log.warning("cache entry corrupt; recompiling", path=str(path))
            self.stats.replaced += 1
            return None
        try:
            component = wc.Component.deserialize(self._engine, bytes(body))
        except wasmtime.WasmtimeError as exc:
            # intact file written by another wasmtime build or engine configuration
            _log.warning("cache entry mismatched; recompiling", path=str(path), error=str(exc))
            self.stats.replaced += 1
            return None
        self.stats.disk_hits += 1
        return component

    def _store_disk(self, digest: str, component: wc.Component) -> None:
        path = self.entry_path(digest)
        if path is None:
            return
        body = bytes(component.serialize())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(_MAGIC)
                    f.write(hashlib.sha256(body).digest())
                    f.write(body)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # a read-only or full cache directory costs speed, never correctness
            _log.warning("cache write failed", path=str(path), error=str(exc))
