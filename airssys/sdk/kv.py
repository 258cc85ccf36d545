"""Key-value storage for components: ``kv.open("default").set("k", b"v")``.

    from airssys.sdk import kv

    bucket = kv.open("default")          # a bucket your grants name
    bucket.set("greeting", b"hello")
    bucket.get("greeting")               # b"hello" (None when absent)
    bucket.increment("visits")           # 1, 2, ... (a counter kept as decimal text)
    for key in bucket.keys(prefix="user:"):
        ...

Buckets are the component's own: another component opening "default" sees other
data (unless the operator's policy shares the bucket), and the data outlives the
instance, restarts and upgrades included. The component's ``[capabilities]
storage`` grant names the buckets it may open and its quota.

Every failure raises a :class:`StorageError` (a :class:`~airssys.sdk.ServiceError`):
:class:`AccessDenied` for a bucket the grants do not name, otherwise with the host's
message (a write past the quota names the quota; nothing of it is stored). Inside a
component this is ``wasi:keyvalue`` 0.2.0-draft2 (plus airssys's prefix scan);
under ``airssys.testing.MockHost`` an in-memory store.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from . import Denied, ServiceError, _services

__all__ = ("AccessDenied", "Bucket", "Handle", "NoSuchStore", "StorageError", "open")


class StorageError(ServiceError):
    """A storage call failed; the message says why."""


class AccessDenied(StorageError, Denied):
    """The component's grants do not name this bucket."""


class NoSuchStore(StorageError):
    """The host knows no such bucket."""


def _error(kind: str, message: str, bucket: str) -> StorageError:
    """The exception for a wasi:keyvalue error (``access-denied``, ``no-such-store``,
    ``other``)."""
    if kind == "access-denied":
        return AccessDenied(
            f"capability denied: storage bucket {bucket!r} is not granted to this component "
            f"(grant it in Component.toml: [capabilities] storage = {{ buckets = [{bucket!r}] }})"
        )
    if kind == "no-such-store":
        return NoSuchStore(f"no bucket {bucket!r} on this host")
    return StorageError(f"bucket {bucket!r}: {message}")


class Handle(Protocol):
    """An open bucket as a backend provides it (raising StorageError)."""

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, cursor: str | None) -> tuple[list[str], str | None]: ...
    def scan(self, prefix: str, cursor: str | None) -> tuple[list[str], str | None]: ...
    def increment(self, key: str, delta: int) -> int: ...
    def get_many(self, keys: list[str]) -> list[bytes | None]: ...
    def set_many(self, pairs: list[tuple[str, bytes]]) -> None: ...
    def delete_many(self, keys: list[str]) -> None: ...
    def compare_and_swap(self, key: str, expected: bytes | None, value: bytes) -> bool: ...
    def close(self) -> None: ...


def _value(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"a value is bytes, not {type(value).__name__} (encode it first)")


class Bucket:
    """One open bucket. Keys are text; values bytes. Use as a context manager, or
    call :meth:`close` (a dropped bucket is closed when collected)."""

    __slots__ = ("_handle", "name")

    def __init__(self, name: str, handle: Handle) -> None:
        self.name = name
        self._handle = handle

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent."""
        return self._handle.get(key)

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` (bytes) under ``key``."""
        self._handle.set(key, _value(value))

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        self._handle.delete(key)

    def exists(self, key: str) -> bool:
        return self._handle.exists(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key (starting with ``prefix``), ascending, fetched a page at a time."""
        cursor: str | None = None
        while True:
            if prefix:
                page, cursor = self._handle.scan(prefix, cursor)
            else:
                page, cursor = self._handle.list_keys(cursor)
            yield from page
            if cursor is None:
                return

    def page(self, prefix: str = "", cursor: str | None = None) -> tuple[list[str], str | None]:
        """One page of keys (starting with ``prefix``) after ``cursor``, and the cursor
        of the next page (None after the last)."""
        if prefix:
            return self._handle.scan(prefix, cursor)
        return self._handle.list_keys(cursor)

    def increment(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to the counter at ``key`` (absent: 0); the new value."""
        return self._handle.increment(key, delta)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        """The values of ``keys`` (None where absent), in one call."""
        wanted = builtins.list(keys)
        return dict(zip(wanted, self._handle.get_many(wanted), strict=True))

    def set_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> None:
        """Store every pair in one call: all of them, or (past the quota) none."""
        pairs = items.items() if isinstance(items, Mapping) else items
        self._handle.set_many([(k, _value(v)) for k, v in pairs])

    def delete_many(self, keys: Iterable[str]) -> None:
        self._handle.delete_many(builtins.list(keys))

    def compare_and_swap(self, key: str, expected: bytes | None, value: bytes) -> bool:
        """Set ``key`` to ``value`` if it holds ``expected`` (None: absent); True if set."""
        return self._handle.compare_and_swap(key, expected, _value(value))

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Bucket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kv.Bucket {self.name!r}>"


def open(name: str = "default") -> Bucket:
    """Open the bucket ``name``; :class:`AccessDenied` when the grants do not name it."""
    return Bucket(name, _services().kv_open(name))
