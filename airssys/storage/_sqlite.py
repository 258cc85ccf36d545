"""The embedded default backend: one SQLite file (stdlib ``sqlite3``), WAL journal.

**Durability.** ``durability="normal"`` (the default) is ``journal_mode=WAL`` with
``synchronous=NORMAL``: a commit appends to the write-ahead log without an fsync; the
log is synced at checkpoints. A *process* crash (kill -9, a segfault) loses nothing
that was committed: the log is in the OS's page cache. A *power loss or OS crash*
can lose the last transactions before the latest checkpoint, but never corrupts the
file: it opens at an earlier consistent state. ``durability="full"``
(``synchronous=FULL``) syncs the log at every commit, so a committed write survives a
power loss too, at the cost of an fsync per write (~0.3 ms on this SSD; more on slow
disks).

**Layout.** One table ``kv(namespace TEXT, key BLOB, value BLOB)`` with primary key
``(namespace, key)``, ``WITHOUT ROWID`` (the row lives in the primary-key B-tree: one
lookup per get). A table ``usage(namespace, parent, bytes, keys)`` holds each
namespace's counters, kept by triggers on ``kv`` inside the writing statement's
transaction, so they never drift from the data (hand-written INSERT, UPDATE and
DELETE statements keep them right too).
A group's usage (one component's buckets) is a sum over its few ``usage`` rows,
through an index on ``parent``: no key is read.

**Threads.** One connection (``check_same_thread=False``) behind one lock. Measured
(256 B values, two cores) against a connection per thread: on one thread the same
(get ~5 us, set ~9 us, a set under a quota, one transaction, ~16 us); on four
threads about the same throughput. Per-thread connections let reads pass a writer
(get p99 ~50 us against ~600 us), but writers then queue in SQLite's busy handler,
which sleeps (set p99 ~1.6 ms against ~0.7 ms) and fails with "database is locked"
past ``timeout``; and each thread's connection would outlive its thread. Other
processes may open the same file: SQLite's locking serialises them (waiting up to
``timeout`` seconds).

Rewriting a row with the value it already holds writes nothing (SQLite dirties no
page), so it costs no more than a read.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, final

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
    prefix_end,
    start_after,
)

__all__ = ("SqliteBackend",)

SCHEMA_VERSION: Final = 1
_CHUNK: Final = 500  # keys per IN (...) of get_many


def _parent_sql(x: str) -> str:
    """SQL for the text of ``x`` before its last '/' ('' when none), as parent_of."""
    return (
        f"CASE WHEN instr({x}, '/') = 0 THEN '' "
        f"ELSE substr({x}, 1, length(rtrim({x}, replace({x}, '/', ''))) - 1) END"
    )


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS kv (
        namespace TEXT NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS usage (
        namespace TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        keys INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS usage_by_parent ON usage (parent)",
    f"""CREATE TRIGGER IF NOT EXISTS kv_insert AFTER INSERT ON kv BEGIN
        INSERT INTO usage (namespace, parent, bytes, keys)
        VALUES (new.namespace, {_parent_sql("new.namespace")},
                length(new.key) + length(new.value), 1)
        ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + excluded.bytes, keys = keys + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS kv_update AFTER UPDATE OF value ON kv BEGIN
        UPDATE usage SET bytes = bytes + length(new.value) - length(old.value)
        WHERE namespace = new.namespace;
    END""",
    """CREATE TRIGGER IF NOT EXISTS kv_delete AFTER DELETE ON kv BEGIN
        UPDATE usage SET bytes = bytes - length(old.key) - length(old.value), keys = keys - 1
        WHERE namespace = old.namespace;
    END""",
)

_GET: Final = "SELECT value FROM kv WHERE namespace = ? AND key = ?"
_EXISTS: Final = "SELECT 1 FROM kv WHERE namespace = ? AND key = ?"
_PUT: Final = (
    "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value"
)
_DELETE: Final = "DELETE FROM kv WHERE namespace = ? AND key = ?"
_USAGE: Final = "SELECT bytes, keys FROM usage WHERE namespace = ?"
_GROUP: Final = "SELECT coalesce(sum(bytes), 0), coalesce(sum(keys), 0) FROM usage WHERE parent = ?"
_LIST: Final = {
    (exclusive, bounded): "SELECT key FROM kv WHERE namespace = ? AND key "
    + (">" if exclusive else ">=")
    + " ?"
    + (" AND key < ?" if bounded else "")
    + " ORDER BY key LIMIT ?"
    for exclusive in (False, True)
    for bounded in (False, True)
}


@final
class SqliteBackend(ClosingContext):
    """A :class:`~airssys.storage.Backend` in one SQLite file at ``path`` (created,
    with its directory, private to this user, if missing)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Literal["normal", "full"] = "normal",
        timeout: float = 5.0,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability is 'normal' or 'full', got {durability!r}")
        self.path = Path(path)
        self.durability = durability
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():  # the log and shared-memory files take its mode
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise StorageError(f"cannot create the storage file {str(self.path)!r}: {exc}") from exc
        try:
            self._conn = sqlite3.connect(
                self.path,
                timeout=timeout,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # one connection, behind self._lock
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the storage file {str(self.path)!r}: {exc}") from exc
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    def _setup(self) -> None:
        conn = self._conn
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(
                    f"{str(self.path)!r}: SQLite refused the WAL journal (mode {mode!r}); "
                    "is it on a network filesystem?"
                )
            sync = "NORMAL" if self.durability == "normal" else "FULL"
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"{str(self.path)!r} holds storage schema {version}, newer than this "
                        f"airssys reads ({SCHEMA_VERSION}): upgrade airssys"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise StorageError(
                f"cannot open the storage file {str(self.path)!r}: {exc} (is it a SQLite "
                "database written by airssys?)"
            ) from exc

    # --- reads ---------------------------------------------------------------------

    def get(self, namespace: str, key: bytes) -> bytes | None:
        key = check_key(key)
        with _Guard(self) as conn:
            row = conn.execute(_GET, (namespace, key)).fetchone()
        return None if row is None else bytes(row[0])

    def exists(self, namespace: str, key: bytes) -> bool:
        key = check_key(key)
        with _Guard(self) as conn:
            return conn.execute(_EXISTS, (namespace, key)).fetchone() is not None

    def get_many(self, namespace: str, keys: Sequence[bytes]) -> list[bytes | None]:
        wanted = [check_key(k) for k in keys]
        found: dict[bytes, bytes] = {}
        unique = list(dict.fromkeys(wanted))
        with _Guard(self) as conn:
            for i in range(0, len(unique), _CHUNK):
                chunk = unique[i : i + _CHUNK]
                sql = (
                    "SELECT key, value FROM kv WHERE namespace = ? AND key IN "
                    f"({', '.join('?' * len(chunk))})"
                )
                found.update(conn.execute(sql, (namespace, *chunk)).fetchall())
        return [found.get(k) for k in wanted]

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
        start, exclusive = start_after(prefix, cursor)
        end = prefix_end(prefix)
        params: tuple[object, ...] = (namespace, start)
        if end is not None:
            params += (end,)
        with _Guard(self) as conn:
            rows = conn.execute(_LIST[exclusive, end is not None], (*params, limit + 1)).fetchall()
        keys = [bytes(row[0]) for row in rows[:limit]]
        return KeyPage(keys, keys[-1] if len(rows) > limit else None)

    def usage(self, namespace: str) -> Usage:
        with _Guard(self) as conn:
            return _usage(conn, namespace)

    def group_usage(self, parent: str) -> Usage:
        with _Guard(self) as conn:
            row = conn.execute(_GROUP, (parent,)).fetchone()
        return Usage(row[0], row[1])

    def namespaces(self) -> list[str]:
        with _Guard(self) as conn:
            rows = conn.execute(
                "SELECT namespace FROM usage WHERE keys > 0 ORDER BY namespace"
            ).fetchall()
        return [row[0] for row in rows]

    # --- writes --------------------------------------------------------------------

    def set(self, namespace: str, key: bytes, value: bytes, *, quota: Quota | None = None) -> None:
        key, value = check_key(key), check_value(value)
        with _Guard(self) as conn:
            if quota is None or quota.unlimited:  # one statement: its own transaction
                conn.execute(_PUT, (namespace, key, value))
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                _put(conn, namespace, [(namespace, key, value)], quota)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def delete(self, namespace: str, key: bytes) -> bool:
        key = check_key(key)
        with _Guard(self) as conn:
            return conn.execute(_DELETE, (namespace, key)).rowcount == 1

    def set_many(
        self,
        namespace: str,
        items: Iterable[tuple[bytes, bytes]],
        *,
        quota: Quota | None = None,
    ) -> None:
        rows = [(namespace, check_key(k), check_value(v)) for k, v in items]
        if not rows:
            return
        with _Guard(self) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _put(conn, namespace, rows, quota)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def delete_many(self, namespace: str, keys: Iterable[bytes]) -> int:
        rows = [(namespace, check_key(k)) for k in keys]
        if not rows:
            return 0
        with _Guard(self) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = conn.executemany(_DELETE, rows).rowcount
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return deleted

    def increment(
        self, namespace: str, key: bytes, delta: int, *, quota: Quota | None = None
    ) -> int:
        key, delta = check_key(key), check_delta(delta)
        with _Guard(self) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(_GET, (namespace, key)).fetchone()
                result = next_counter(None if row is None else row[0], delta, namespace, key)
                _put(conn, namespace, [(namespace, key, encode_counter(result))], quota)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
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
        with _Guard(self) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(_GET, (namespace, key)).fetchone()
                swapped = (None if row is None else bytes(row[0])) == expected
                if swapped:
                    _put(conn, namespace, [(namespace, key, value)], quota)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return swapped

    def drop(self, namespace: str) -> Usage:
        with _Guard(self) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                held = _usage(conn, namespace)
                conn.execute("DELETE FROM kv WHERE namespace = ?", (namespace,))
                conn.execute("DELETE FROM usage WHERE namespace = ?", (namespace,))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return held

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.durability
        return f"<SqliteBackend {str(self.path)!r} ({state})>"


@final
class _Guard:
    """Hold the backend's lock around one operation; turn sqlite3 errors into
    StorageError. (A class, not @contextmanager: it is on every call's path.)"""

    __slots__ = ("_backend",)

    def __init__(self, backend: SqliteBackend) -> None:
        self._backend = backend

    def __enter__(self) -> sqlite3.Connection:
        backend = self._backend
        backend._lock.acquire()
        if backend._closed:
            backend._lock.release()
            raise StorageError(CLOSED)
        return backend._conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._backend._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"storage failed ({self._backend.path}): {exc}") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
        conn.execute("ROLLBACK")


def _usage(conn: sqlite3.Connection, namespace: str) -> Usage:
    row = conn.execute(_USAGE, (namespace,)).fetchone()
    return Usage(0, 0) if row is None else Usage(row[0], row[1])


def _put(
    conn: sqlite3.Connection,
    namespace: str,
    rows: list[tuple[str, bytes, bytes]],
    quota: Quota | None,
) -> None:
    """Write ``rows`` in the open transaction; QuotaExceeded (the caller rolls back)
    if they take usage past ``quota``. The usage after the write is read only when
    the write could pass a limit were it all growth (so: near the limit)."""
    if quota is None or quota.unlimited:
        conn.executemany(_PUT, rows)
        return
    size = sum(len(key) + len(value) for _, key, value in rows)
    before = _scope_usage(conn, quota, namespace)
    if len(rows) == 1:
        conn.execute(_PUT, rows[0])
    else:
        conn.executemany(_PUT, rows)
    if not quota.room(before, size, len(rows)):
        quota.check(namespace, before, _scope_usage(conn, quota, namespace), size)


def _scope_usage(conn: sqlite3.Connection, quota: Quota, namespace: str) -> Usage:
    if quota.scope == "namespace":
        return _usage(conn, namespace)
    row = conn.execute(_GROUP, (parent_of(namespace),)).fetchone()
    return Usage(row[0], row[1])
