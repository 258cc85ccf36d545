"""Writes that commit with their message: a durable component's storage.

:class:`StagedBackend` wraps a component's backend. Between :meth:`begin` and
:meth:`end`, the component's writes (set, delete, increment, cas, the batch calls) are
kept in memory, per namespace, and its reads see them (read your writes: gets,
existence, listings and scans merge them with what is stored), until :meth:`commit`
stores them or :meth:`discard` forgets them. The run loop of a durable component
begins before a batch of journaled messages and, after each message, commits what it
staged when it succeeded; a trap, a deadline or an ``err`` discards it, so a failed
message leaves nothing in storage. Outside a batch, calls go straight through.

Quotas are checked when a write is staged, against the stored usage plus what the
message staged before it, so a write past a quota is refused at the call as it would
be otherwise. :meth:`commit` writes each namespace in one transaction (``delete_many``
then ``set_many``, with the quota again); a message that writes several buckets
commits them one after the other, and a commit that fails (another component filled a
shared bucket meanwhile, the disk is full) fails the message like a trap.

One instance's, used by one thread at a time (the instance's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Self

from ._backend import (
    DEFAULT_PAGE,
    Backend,
    KeyPage,
    Quota,
    Usage,
    check_key,
    check_limit,
    check_value,
    encode_counter,
    next_counter,
    parent_of,
    prefix_end,
)

__all__ = ("StagedBackend",)


class StagedBackend:
    """A backend whose writes wait for :meth:`commit` while a message runs."""

    def __init__(self, backend: Callable[[], Backend]) -> None:
        self._open = backend
        self._backend: Backend | None = None
        self.writes: dict[str, dict[bytes, bytes | None]] = {}
        """What the running message staged, per namespace (empty: nothing to commit)."""
        self._quotas: dict[str, Quota | None] = {}
        self._delta: dict[str, tuple[int, int]] = {}  # namespace -> (bytes, keys) staged
        self.active = False

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._open()
        return self._backend

    # --- a message ----------------------------------------------------------------------

    def begin(self) -> None:
        """Messages start: their writes wait from now on, until :meth:`end`."""
        if self.writes:
            self.discard()
        self.active = True

    def commit(self) -> None:
        """The message succeeded: store what it wrote (each namespace in one transaction);
        the next message's writes wait too."""
        if not self.writes:
            return
        writes, quotas = self.writes, self._quotas
        self.writes, self._quotas, self._delta = {}, {}, {}
        backend = self.backend
        for namespace, staged in writes.items():
            deleted = [key for key, value in staged.items() if value is None]
            stored = [(key, value) for key, value in staged.items() if value is not None]
            if deleted:
                backend.delete_many(namespace, deleted)
            if stored:
                backend.set_many(namespace, stored, quota=quotas.get(namespace))

    def discard(self) -> None:
        """The message failed: forget what it wrote."""
        self.writes, self._quotas, self._delta = {}, {}, {}

    def end(self) -> None:
        """No message runs: writes go straight through again (what was not committed is
        forgotten)."""
        self.discard()
        self.active = False

    # --- staging ------------------------------------------------------------------------

    def _current(self, namespace: str, key: bytes) -> bytes | None:
        staged = self.writes.get(namespace)
        if staged is not None and key in staged:
            return staged[key]
        return self.backend.get(namespace, key)

    def _stage(self, namespace: str, key: bytes, value: bytes | None, quota: Quota | None) -> None:
        old = self._current(namespace, key)
        size = 0 if value is None else len(key) + len(value)
        grow = (
            size - (0 if old is None else len(key) + len(old)),
            (value is not None) - (old is not None),
        )
        if quota is not None and not quota.unlimited and value is not None:
            before = self._usage(quota, namespace)
            after = Usage(before.bytes + grow[0], before.keys + grow[1])
            quota.check(namespace, before, after, size)
        had = self._delta.get(namespace, (0, 0))
        self._delta[namespace] = (had[0] + grow[0], had[1] + grow[1])
        self.writes.setdefault(namespace, {})[key] = value
        if quota is not None:
            self._quotas[namespace] = quota

    def _usage(self, quota: Quota, namespace: str) -> Usage:
        """The quota's scope's usage as the message sees it: stored plus staged."""
        scope = quota.scope_of(namespace)
        if quota.scope == "group":
            stored = self.backend.group_usage(scope)
            staged = [d for ns, d in self._delta.items() if parent_of(ns) == scope]
        else:
            stored = self.backend.usage(namespace)
            staged = [self._delta.get(namespace, (0, 0))]
        return Usage(
            stored.bytes + sum(d[0] for d in staged), stored.keys + sum(d[1] for d in staged)
        )

    # --- the Backend protocol -------------------------------------------------------------

    def get(self, namespace: str, key: bytes) -> bytes | None:
        if not self.active:
            return self.backend.get(namespace, key)
        return self._current(namespace, check_key(key))

    def exists(self, namespace: str, key: bytes) -> bool:
        return self.get(namespace, key) is not None

    def get_many(self, namespace: str, keys: Sequence[bytes]) -> list[bytes | None]:
        if not self.active or namespace not in self.writes:
            return self.backend.get_many(namespace, keys)
        return [self._current(namespace, check_key(key)) for key in keys]

    def list_keys(
        self,
        namespace: str,
        *,
        prefix: bytes = b"",
        cursor: bytes | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> KeyPage:
        staged = self.writes.get(namespace) if self.active else None
        if not staged:
            return self.backend.list_keys(namespace, prefix=prefix, cursor=cursor, limit=limit)
        limit = check_limit(limit)
        end = prefix_end(prefix)

        def wanted(key: bytes) -> bool:
            return key >= prefix and (end is None or key < end) and (cursor is None or key > cursor)

        added = sorted(k for k, v in staged.items() if v is not None and wanted(k))
        keys: list[bytes] = []  # stored keys not deleted or rewritten by this message
        after, more, last = cursor, False, b""
        while True:
            page = self.backend.list_keys(namespace, prefix=prefix, cursor=after, limit=limit)
            keys.extend(k for k in page.keys if k not in staged)
            if page.cursor is None:
                break
            if len(keys) >= limit:
                more, last = True, page.keys[-1]
                break
            after = page.cursor
        if more:  # an added key past the last one listed goes with a later page
            added = [k for k in added if k <= last]
        merged = sorted(keys + added)
        if len(merged) > limit:
            return KeyPage(merged[:limit], merged[limit - 1])
        return KeyPage(merged, merged[-1] if more else None)

    def set(self, namespace: str, key: bytes, value: bytes, *, quota: Quota | None = None) -> None:
        if self.active:
            self._stage(namespace, check_key(key), check_value(value), quota)
        else:
            self.backend.set(namespace, key, value, quota=quota)

    def delete(self, namespace: str, key: bytes) -> bool:
        if not self.active:
            return self.backend.delete(namespace, key)
        key = check_key(key)
        existed = self._current(namespace, key) is not None
        self._stage(namespace, key, None, None)
        return existed

    def increment(
        self, namespace: str, key: bytes, delta: int, *, quota: Quota | None = None
    ) -> int:
        if not self.active:
            return self.backend.increment(namespace, key, delta, quota=quota)
        key = check_key(key)
        result = next_counter(self._current(namespace, key), delta, namespace, key)
        self._stage(namespace, key, encode_counter(result), quota)
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
        if not self.active:
            return self.backend.cas(namespace, key, expected, value, quota=quota)
        key, value = check_key(key), check_value(value)
        if self._current(namespace, key) != expected:
            return False
        self._stage(namespace, key, value, quota)
        return True

    def set_many(
        self,
        namespace: str,
        items: Iterable[tuple[bytes, bytes]],
        *,
        quota: Quota | None = None,
    ) -> None:
        if self.active:
            pairs = [(check_key(k), check_value(v)) for k, v in items]
            self._all_or_none(namespace, pairs, quota)
        else:
            self.backend.set_many(namespace, items, quota=quota)

    def delete_many(self, namespace: str, keys: Iterable[bytes]) -> int:
        if not self.active:
            return self.backend.delete_many(namespace, keys)
        present = 0
        for key in [check_key(k) for k in keys]:
            present += self._current(namespace, key) is not None
            self._stage(namespace, key, None, None)
        return present

    def _all_or_none(
        self, namespace: str, pairs: list[tuple[bytes, bytes]], quota: Quota | None
    ) -> None:
        """Stage every pair, or (a quota refused one) none of them."""
        writes = dict(self.writes.get(namespace, {}))
        delta = self._delta.get(namespace)
        try:
            for key, value in pairs:
                self._stage(namespace, key, value, quota)
        except BaseException:
            self.writes[namespace] = writes
            if delta is None:
                self._delta.pop(namespace, None)
            else:
                self._delta[namespace] = delta
            raise

    def usage(self, namespace: str) -> Usage:
        return self.backend.usage(namespace)

    def group_usage(self, parent: str) -> Usage:
        return self.backend.group_usage(parent)

    def drop(self, namespace: str) -> Usage:
        return self.backend.drop(namespace)

    def namespaces(self) -> list[str]:
        return self.backend.namespaces()

    def close(self) -> None:
        """Nothing of its own to close: the backend belongs to the system."""
        self.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
