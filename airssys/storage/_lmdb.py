"""An LMDB backend (``pip install 'airssys[storage]'``): memory-mapped, reads in ~1-2 us.

**Layout.** One LMDB environment (a directory) with two named databases. ``data``
holds every key of every namespace, prefixed with the namespace's 4-byte id
(``id + key``): keys of a namespace are contiguous and sorted, so paging and
prefix scans are cursor walks, and namespaces are unlimited in number (LMDB's named
databases are fixed in number when the environment opens, and each costs a slot).
``meta`` maps names to ids and back and holds the counters: per namespace and per
parent (a group: one component's buckets), updated in the write's transaction.
Ids are never reused, so a dropped namespace's stale id names nothing.

**Durability** (``durability=``):

* ``"normal"`` (default): LMDB's ``metasync=False``. One fdatasync per commit; a
  process crash loses nothing committed; a power loss can undo the last
  transaction, and never corrupts the file. ~150 us a write on an SSD.
* ``"full"``: sync data and meta page at every commit: nothing committed is lost
  even on a power loss. ~0.3 ms a write, p99 several ms.
* ``"none"``: ``sync=False``. No sync at commit (a few us a write); a process crash
  still loses nothing (the writes are in the OS page cache), but a power loss can
  lose recent transactions and, on a filesystem that reorders writes, corrupt the
  file. Call :meth:`LmdbBackend.sync` to flush.

**Limits.** ``map_size`` (default 1 GiB) is the most the file can grow to; it is
reserved address space, not disk (the file is sparse). A write past it raises
:class:`~airssys.errors.StorageError` and writes nothing: reopen with a larger
``map_size``. Only one backend object, in one process, may open an environment at a
time (LMDB forbids opening one twice in a process); a second raises StorageError.

**Threads.** Reads take no Python lock (an LMDB read transaction each, lock-free);
writes are serialised by one lock, one write transaction each.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, final

from ..errors import StorageError
from ._backend import (
    CLOSED,
    DEFAULT_PAGE,
    ClosingContext,
    KeyPage,
    Quota,
    Usage,
    check_delta,
    check_key,
    check_limit,
    check_value,
    encode_counter,
    next_counter,
    parent_of,
    plan,
    plus,
    start_after,
)

if TYPE_CHECKING:
    import lmdb

__all__ = ("LmdbBackend",)

INSTALL_HINT: Final = "pip install 'airssys[storage]'"
DEFAULT_MAP_SIZE: Final = 1 << 30
_COUNTS: Final = struct.Struct(">qq")
_ID: Final = struct.Struct(">I")
_NEXT: Final = b"#next"
_NAME, _IDENT, _USAGE, _GROUP = b"n", b"i", b"u", b"g"
_LOCK_FILE: Final = "airssys.lock"


def _import_lmdb() -> Any:
    try:
        import lmdb
    except ImportError as exc:
        raise StorageError(
            f"the LMDB storage backend needs the lmdb package: {INSTALL_HINT} "
            "(or choose the sqlite backend)"
        ) from exc
    return lmdb


def _usage(raw: bytes | None) -> Usage:
    return Usage(0, 0) if raw is None else Usage(*_COUNTS.unpack(raw))


@final
class LmdbBackend(ClosingContext):
    """A :class:`~airssys.storage.Backend` in an LMDB environment (a directory) at
    ``path``, created private to this user if missing."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        durability: Literal["normal", "full", "none"] = "normal",
        max_readers: int = 126,
    ) -> None:
        if durability not in ("normal", "full", "none"):
            raise ValueError(f"durability is 'normal', 'full' or 'none', got {durability!r}")
        module = _import_lmdb()
        self._errors: type[Exception] = module.Error
        self._map_full: type[Exception] = module.MapFullError
        self.path = Path(path)
        self.durability = durability
        self.map_size = map_size
        self._wlock = threading.Lock()
        self._closed = False
        self._ids: dict[str, bytes] = {}
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(
                self.path / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise StorageError(f"cannot create the LMDB store {str(self.path)!r}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise StorageError(
                f"the LMDB store {str(self.path)!r} is open elsewhere (another process, or "
                "another backend object in this one): LMDB allows one at a time"
            ) from exc
        try:
            self._env: lmdb.Environment = module.open(
                str(self.path),
                map_size=map_size,
                subdir=True,
                max_dbs=2,
                max_readers=max_readers,
                sync=durability != "none",
                metasync=durability == "full",
                readahead=False,
                mode=0o600,
            )
            self._data: lmdb._Database = self._env.open_db(b"data")
            self._meta: lmdb._Database = self._env.open_db(b"meta")
            if self._env.max_key_size() < 4 + 500:
                raise StorageError(
                    f"this LMDB build takes keys of {self._env.max_key_size()} bytes, "
                    "fewer than airssys needs (504)"
                )
            with self._env.begin(db=self._meta) as txn:
                cursor = txn.cursor()
                if cursor.set_range(_NAME):
                    for name, ident in cursor:
                        if not name.startswith(_NAME):
                            break
                        self._ids[name[1:].decode("utf-8")] = ident
        except BaseException as exc:
            if hasattr(self, "_env"):
                self._env.close()
            os.close(self._lock_fd)
            if isinstance(exc, self._errors):
                raise StorageError(f"cannot open the LMDB store {str(self.path)!r}: {exc}") from exc
            raise

    # --- reads (no Python lock) ------------------------------------------------------

    def get(self, namespace: str, key: bytes) -> bytes | None:
        key = check_key(key)
        ident = self._ids.get(namespace)
        if ident is None:
            self._check_open()
            return None
        try:
            with self._env.begin(db=self._data) as txn:
                return txn.get(ident + key)
        except self._errors as exc:
            raise self._failed(exc) from exc

    def exists(self, namespace: str, key: bytes) -> bool:
        return self.get(namespace, key) is not None

    def get_many(self, namespace: str, keys: Sequence[bytes]) -> list[bytes | None]:
        wanted = [check_key(k) for k in keys]
        ident = self._ids.get(namespace)
        if ident is None:
            self._check_open()
            return [None] * len(wanted)
        try:
            with self._env.begin(db=self._data) as txn:
                return [txn.get(ident + k) for k in wanted]
        except self._errors as exc:
            raise self._failed(exc) from exc

    def list_keys(
        self,
        namespace: str,
        *,
        prefix: bytes = b"",
        cursor: bytes | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> KeyPage:
        prefix = check_key(prefix, "prefix")
        cursor = None if cursor is None else check_key(cursor, "cursor")
        limit = check_limit(limit)
        ident = self._ids.get(namespace)
        if ident is None:
            self._check_open()
            return KeyPage([], None)
        start, exclusive = start_after(prefix, cursor)
        within = ident + prefix
        keys: list[bytes] = []
        try:
            with self._env.begin(db=self._data) as txn:
                walk = txn.cursor()
                if walk.set_range(ident + start):
                    for raw in walk.iternext(keys=True, values=False):
                        if not raw.startswith(within):
                            break
                        if exclusive and raw == ident + start:
                            continue
                        keys.append(raw[4:])
                        if len(keys) > limit:
                            break
        except self._errors as exc:
            raise self._failed(exc) from exc
        if len(keys) > limit:
            del keys[limit:]
            return KeyPage(keys, keys[-1])
        return KeyPage(keys, None)

    def usage(self, namespace: str) -> Usage:
        ident = self._ids.get(namespace)
        if ident is None:
            self._check_open()
            return Usage(0, 0)
        return self._read_meta(_USAGE + ident)

    def group_usage(self, parent: str) -> Usage:
        return self._read_meta(_GROUP + parent.encode("utf-8"))

    def namespaces(self) -> list[str]:
        self._check_open()
        return sorted(ns for ns in list(self._ids) if self.usage(ns).keys > 0)

    def sync(self) -> None:
        """Flush to disk now (for ``durability="none"``)."""
        with self._wlock:
            self._check_open()
            try:
                self._env.sync(True)
            except self._errors as exc:
                raise self._failed(exc) from exc

    # --- writes (one at a time) -------------------------------------------------------

    def set(self, namespace: str, key: bytes, value: bytes, *, quota: Quota | None = None) -> None:
        self._write(namespace, [(check_key(key), check_value(value))], quota)

    def delete(self, namespace: str, key: bytes) -> bool:
        return self._write(namespace, [(check_key(key), None)], None) == 1

    def set_many(
        self,
        namespace: str,
        items: Iterable[tuple[bytes, bytes]],
        *,
        quota: Quota | None = None,
    ) -> None:
        changes: list[tuple[bytes, bytes | None]] = [
            (check_key(k), check_value(v)) for k, v in items
        ]
        if changes:
            self._write(namespace, changes, quota)

    def delete_many(self, namespace: str, keys: Iterable[bytes]) -> int:
        changes: list[tuple[bytes, bytes | None]] = [(check_key(k), None) for k in keys]
        return self._write(namespace, changes, None) if changes else 0

    def increment(
        self, namespace: str, key: bytes, delta: int, *, quota: Quota | None = None
    ) -> int:
        key, delta = check_key(key), check_delta(delta)
        result = 0

        def build(current: bytes | None) -> bytes | None:
            nonlocal result
            result = next_counter(current, delta, namespace, key)
            return encode_counter(result)

        self._write(namespace, [], quota, read_modify=(key, build))
        return result

    def cas(
        self,
        namespace: str,
        key: bytes,
        expected: bytes | None,
        value: bytes,
        *,
        quota: Quota | None = None,
    ) -> bool:
        key, value = check_key(key), check_value(value)
        expected = None if expected is None else check_value(expected)
        swapped = False

        def build(current: bytes | None) -> bytes | None:
            nonlocal swapped
            swapped = current == expected
            return value if swapped else None

        self._write(namespace, [], quota, read_modify=(key, build))
        return swapped

    def drop(self, namespace: str) -> Usage:
        with self._wlock:
            self._check_open()
            ident = self._ids.get(namespace)
            if ident is None:
                return Usage(0, 0)
            try:
                with self._env.begin(write=True) as txn:
                    held = _usage(txn.get(_USAGE + ident, db=self._meta))
                    walk = txn.cursor(db=self._data)
                    if walk.set_range(ident):
                        while walk.key()[:4] == ident and walk.delete():
                            pass
                    self._count(txn, _GROUP + parent_of(namespace).encode(), -held[0], -held[1])
                    for meta_key in (_NAME + namespace.encode(), _IDENT + ident, _USAGE + ident):
                        txn.delete(meta_key, db=self._meta)
            except self._errors as exc:
                raise self._failed(exc) from exc
            del self._ids[namespace]
            return held

    def close(self) -> None:
        with self._wlock:
            if not self._closed:
                self._closed = True
                self._env.close()
                os.close(self._lock_fd)  # releases the flock

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.durability
        return f"<LmdbBackend {str(self.path)!r} ({state})>"

    # --- internals -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(CLOSED)

    def _failed(self, exc: Exception) -> StorageError:
        if self._closed:
            return StorageError(CLOSED)
        if isinstance(exc, self._map_full):
            return StorageError(
                f"the LMDB store {str(self.path)!r} is full (map_size={self.map_size} bytes); "
                "nothing was written. Reopen it with a larger map_size"
            )
        return StorageError(f"storage failed ({self.path}): {exc}")

    def _read_meta(self, key: bytes) -> Usage:
        self._check_open()
        try:
            with self._env.begin(db=self._meta) as txn:
                return _usage(txn.get(key))
        except self._errors as exc:
            raise self._failed(exc) from exc

    def _count(self, txn: lmdb.Transaction[bytes], key: bytes, d_bytes: int, d_keys: int) -> None:
        old = _usage(txn.get(key, db=self._meta))
        txn.put(key, _COUNTS.pack(old[0] + d_bytes, old[1] + d_keys), db=self._meta)

    def _write(
        self,
        namespace: str,
        changes: list[tuple[bytes, bytes | None]],
        quota: Quota | None,
        *,
        read_modify: tuple[bytes, Any] | None = None,
    ) -> int:
        """Apply ``changes`` in one write transaction, all or nothing; how many existing
        keys were deleted. ``read_modify=(key, build)``: the change is
        ``(key, build(current value))``, worked out inside the transaction (``build``
        returning None: write nothing)."""
        with self._wlock:
            self._check_open()
            ident = self._ids.get(namespace)
            created: bytes | None = None
            try:
                with self._env.begin(write=True) as txn:

                    def current(key: bytes) -> bytes | None:
                        return None if ident is None else txn.get(ident + key, db=self._data)

                    if read_modify is not None:
                        key, build = read_modify
                        value = build(current(key))
                        if value is None:
                            return 0
                        changes = [(key, value)]
                    p = plan(changes, current)
                    if quota is not None and not quota.unlimited:
                        if quota.scope == "group":
                            scope_key = _GROUP + parent_of(namespace).encode()
                            before = _usage(txn.get(scope_key, db=self._meta))
                        elif ident is not None:
                            before = _usage(txn.get(_USAGE + ident, db=self._meta))
                        else:
                            before = Usage(0, 0)
                        after = plus(before, p.delta_bytes, p.delta_keys)
                        quota.check(namespace, before, after, p.size)
                    if ident is None:
                        if all(v is None for v in p.final.values()):
                            return 0
                        ident = created = self._create(txn, namespace)
                    deleted = 0
                    for key, value in p.final.items():
                        if value is None:
                            deleted += txn.delete(ident + key, db=self._data)
                        else:
                            txn.put(ident + key, value, db=self._data)
                    if p.delta_bytes or p.delta_keys:
                        self._count(txn, _USAGE + ident, p.delta_bytes, p.delta_keys)
                        group = _GROUP + parent_of(namespace).encode()
                        self._count(txn, group, p.delta_bytes, p.delta_keys)
            except self._errors as exc:
                raise self._failed(exc) from exc
            if created is not None:  # committed: now readers may see it
                self._ids[namespace] = created
            return deleted

    def _create(self, txn: lmdb.Transaction[bytes], namespace: str) -> bytes:
        raw = txn.get(_NEXT, db=self._meta)
        number = 1 if raw is None else _ID.unpack(raw)[0]
        if number >= 2**32 - 1:
            raise StorageError(f"the LMDB store {str(self.path)!r} ran out of namespace ids")
        ident = _ID.pack(number)
        txn.put(_NEXT, _ID.pack(number + 1), db=self._meta)
        txn.put(_NAME + namespace.encode(), ident, db=self._meta)
        txn.put(_IDENT + ident, namespace.encode(), db=self._meta)
        return ident
