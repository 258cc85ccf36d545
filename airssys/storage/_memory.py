"""An in-memory backend: for tests and ``airssys.testing.MockHost``. Nothing survives
the object; everything else behaves as the persistent backends do."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence
from typing import final

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
    prefix_end,
    start_after,
)

__all__ = ("MemoryBackend",)


class _Space:
    """One namespace: the values, the keys kept sorted for paging, and the counters."""

    __slots__ = ("bytes", "data", "keys", "sorted")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sorted: list[bytes] = []
        self.bytes = 0
        self.keys = 0


@final
class MemoryBackend(ClosingContext):
    """A :class:`~airssys.storage.Backend` in a dict; one lock around everything."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spaces: dict[str, _Space] = {}
        self._groups: dict[str, list[int]] = {}  # parent -> [bytes, keys]
        self._closed = False

    # --- reads ---------------------------------------------------------------------

    def get(self, namespace: str, key: bytes) -> bytes | None:
        key = check_key(key)
        with self._lock:
            self._check_open()
            space = self._spaces.get(namespace)
            return None if space is None else space.data.get(key)

    def exists(self, namespace: str, key: bytes) -> bool:
        return self.get(namespace, key) is not None

    def get_many(self, namespace: str, keys: Sequence[bytes]) -> list[bytes | None]:
        wanted = [check_key(k) for k in keys]
        with self._lock:
            self._check_open()
            space = self._spaces.get(namespace)
            if space is None:
                return [None] * len(wanted)
            return [space.data.get(k) for k in wanted]

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
        with self._lock:
            self._check_open()
            space = self._spaces.get(namespace)
            if space is None:
                return KeyPage([], None)
            keys = space.sorted
            i = (bisect.bisect_right if exclusive else bisect.bisect_left)(keys, start)
            j = len(keys) if end is None else bisect.bisect_left(keys, end, lo=i)
            page = keys[i : min(j, i + limit)]
            more = i + limit < j
        return KeyPage(page, page[-1] if more else None)

    def usage(self, namespace: str) -> Usage:
        with self._lock:
            self._check_open()
            space = self._spaces.get(namespace)
            return Usage(0, 0) if space is None else Usage(space.bytes, space.keys)

    def group_usage(self, parent: str) -> Usage:
        with self._lock:
            self._check_open()
            counts = self._groups.get(parent)
            return Usage(0, 0) if counts is None else Usage(counts[0], counts[1])

    def namespaces(self) -> list[str]:
        with self._lock:
            self._check_open()
            return sorted(ns for ns, space in self._spaces.items() if space.keys)

    # --- writes --------------------------------------------------------------------

    def set(self, namespace: str, key: bytes, value: bytes, *, quota: Quota | None = None) -> None:
        change = (check_key(key), check_value(value))
        with self._lock:
            self._write(namespace, [change], quota)

    def delete(self, namespace: str, key: bytes) -> bool:
        key = check_key(key)
        with self._lock:
            return self._write(namespace, [(key, None)], None) == 1

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
        with self._lock:
            self._write(namespace, changes, quota)

    def delete_many(self, namespace: str, keys: Iterable[bytes]) -> int:
        changes: list[tuple[bytes, bytes | None]] = [(check_key(k), None) for k in keys]
        with self._lock:
            return self._write(namespace, changes, None)

    def increment(
        self, namespace: str, key: bytes, delta: int, *, quota: Quota | None = None
    ) -> int:
        key, delta = check_key(key), check_delta(delta)
        with self._lock:
            self._check_open()
            space = self._spaces.get(namespace)
            current = None if space is None else space.data.get(key)
            result = next_counter(current, delta, namespace, key)
            self._write(namespace, [(key, encode_counter(result))], quota)
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
        with self._lock:
            self._check_open()
            space = self._spaces.get(namespace)
            current = None if space is None else space.data.get(key)
            if current != expected:
                return False
            self._write(namespace, [(key, value)], quota)
            return True

    def drop(self, namespace: str) -> Usage:
        with self._lock:
            self._check_open()
            space = self._spaces.pop(namespace, None)
            if space is None:
                return Usage(0, 0)
            self._count_group(namespace, -space.bytes, -space.keys)
            return Usage(space.bytes, space.keys)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._spaces.clear()
            self._groups.clear()

    # --- internals (the lock held) ----------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(CLOSED)

    def _write(
        self,
        namespace: str,
        changes: list[tuple[bytes, bytes | None]],
        quota: Quota | None,
    ) -> int:
        """Apply ``changes`` all or nothing; how many existing keys were deleted."""
        self._check_open()
        space = self._spaces.get(namespace)
        data = space.data if space is not None else {}
        p = plan(changes, data.get)
        if quota is not None and not quota.unlimited:
            scope = quota.scope_of(namespace)
            if quota.scope == "group":
                counts = self._groups.get(scope, [0, 0])
                before = Usage(counts[0], counts[1])
            else:
                before = Usage(space.bytes, space.keys) if space is not None else Usage(0, 0)
            quota.check(namespace, before, plus(before, p.delta_bytes, p.delta_keys), p.size)
        if space is None:
            if all(v is None for v in p.final.values()):
                return 0
            space = self._spaces[namespace] = _Space()
        deleted = 0
        for key, value in p.final.items():
            had = key in space.data
            if value is None:
                if had:
                    del space.data[key]
                    del space.sorted[bisect.bisect_left(space.sorted, key)]
                    deleted += 1
            else:
                if not had:
                    bisect.insort(space.sorted, key)
                space.data[key] = value
        space.bytes += p.delta_bytes
        space.keys += p.delta_keys
        self._count_group(namespace, p.delta_bytes, p.delta_keys)
        return deleted

    def _count_group(self, namespace: str, delta_bytes: int, delta_keys: int) -> None:
        counts = self._groups.setdefault(parent_of(namespace), [0, 0])
        counts[0] += delta_bytes
        counts[1] += delta_keys

    def __repr__(self) -> str:
        return f"<MemoryBackend {len(self._spaces)} namespaces>"
