"""The one Protocol every key-value backend implements, and what the backends share.

A backend stores ``bytes`` keys and values in **namespaces** (plain strings). It knows
nothing of components, buckets or grants: :class:`~airssys.storage.KeyValue` maps a
component's bucket to a namespace and passes a :class:`Quota` with every write.

Usage is counted per namespace (bytes = the sum of ``len(key) + len(value)``, keys =
how many), in the same transaction as the write, so reading it is O(1). A
namespace's **parent** is the text before its last ``/`` (``"/app/worker"`` for
``"/app/worker/default"``); a quota is enforced either on the written namespace
alone or on the group of namespaces sharing its parent (all of one component's
buckets), whose usage :meth:`Backend.group_usage` reads from the counters too (a
sum over the group's few namespaces at most, never a scan of keys).

Counters (:meth:`Backend.increment`) are stored as **decimal ASCII text** (``b"42"``,
``b"-7"``): a component reads one with ``int(value)``, an export shows it as it is,
and a value that is not a number is told apart from one that is (an 8-byte
big-endian encoding would take any 8-byte value for a number). The result must fit
a signed 64-bit integer, as wasi:keyvalue's ``s64``.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, NamedTuple, Protocol, Self, runtime_checkable

from ..errors import InvalidKey as InvalidKey
from ..errors import NotACounter as NotACounter
from ..errors import QuotaExceeded

__all__ = (
    "DEFAULT_PAGE",
    "MAX_KEY_BYTES",
    "MAX_PAGE",
    "Backend",
    "InvalidKey",
    "KeyPage",
    "NotACounter",
    "Quota",
    "Usage",
    "parent_of",
)

MAX_KEY_BYTES: Final = 500
"""The longest key, in bytes, every backend accepts (LMDB's limit is 511 bytes, of
which the namespace prefix takes 4); one limit everywhere, so data moves between
backends."""
DEFAULT_PAGE: Final = 1000
"""Keys per page of :meth:`Backend.list_keys` when no limit is given."""
MAX_PAGE: Final = 10_000
"""The most keys one page may hold."""
S64_MIN: Final = -(2**63)
S64_MAX: Final = 2**63 - 1
_COUNTER: Final = re.compile(rb"-?[0-9]{1,19}")


class Usage(NamedTuple):
    """What a namespace (or a group of them) holds: ``bytes`` = the sum of key and
    value sizes, ``keys`` = how many keys."""

    bytes: int
    keys: int


class KeyPage(NamedTuple):
    """One page of keys in ascending byte order, and the cursor for the next page
    (the last key returned), or None when there are no more."""

    keys: list[bytes]
    cursor: bytes | None


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits a write must stay within; None = no limit of that kind.

    ``scope``: ``"group"`` counts every namespace with the written namespace's parent
    (one component's buckets); ``"namespace"`` the written namespace alone (a shared
    bucket). ``label`` names whose storage it is in the error (``component
    '/app/worker'``).

    A write that would take usage past a limit raises
    :class:`~airssys.errors.QuotaExceeded` and writes nothing. A write that does not
    grow what is over the limit (a smaller value, a delete) is always allowed, so a
    component over a lowered quota can clean up.
    """

    max_bytes: int | None = None
    max_keys: int | None = None
    scope: Literal["group", "namespace"] = "group"
    label: str = ""

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_keys"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"Quota.{name} must be a non-negative int or None, got {value!r}")
        if self.scope not in ("group", "namespace"):
            raise ValueError(f"Quota.scope must be 'group' or 'namespace', got {self.scope!r}")

    @property
    def unlimited(self) -> bool:
        return self.max_bytes is None and self.max_keys is None

    def scope_of(self, namespace: str) -> str:
        """The name whose usage this quota bounds, for a write into ``namespace``."""
        return parent_of(namespace) if self.scope == "group" else namespace

    def room(self, before: Usage, size: int, keys: int) -> bool:
        """Whether a write of ``size`` bytes over ``keys`` keys fits from ``before``
        even if all of it is growth (then no need to measure what it changed)."""
        return (self.max_bytes is None or before.bytes + size <= self.max_bytes) and (
            self.max_keys is None or before.keys + keys <= self.max_keys
        )

    def check(self, namespace: str, before: Usage, after: Usage, size: int) -> None:
        """Raise QuotaExceeded if going from ``before`` to ``after`` breaks a limit."""
        label = self.label or f"namespace {namespace!r}"
        for quota, limit, held, made, unit in (
            ("bytes", self.max_bytes, before.bytes, after.bytes, ""),
            ("keys", self.max_keys, before.keys, after.keys, " keys"),
        ):
            # a write that does not grow what is over a limit passes (cleaning up does)
            if limit is not None and made > max(limit, held):
                raise QuotaExceeded(
                    f"storage quota exceeded: {label} may hold {limit} {quota} "
                    f"(its {quota} quota) and holds {held}; this write of {size} "
                    f"bytes would make it {made}{unit}. Nothing was written.",
                    quota=quota,
                    limit=limit,
                    usage=held,
                    size=size,
                    scope=label,
                )


def parent_of(namespace: str) -> str:
    """The text before the last ``/`` ('' when there is none)."""
    return namespace.rpartition("/")[0]


class ClosingContext(abc.ABC):
    """``with backend:`` closes it at the end of the block (the backends' base)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@runtime_checkable
class Backend(Protocol):
    """A key-value store of bytes within namespaces. Thread-safe: host calls arrive
    on worker threads. Every write is atomic: it all happens, or (on any error,
    including :class:`~airssys.errors.QuotaExceeded`) none of it does."""

    def get(self, namespace: str, key: bytes) -> bytes | None:
        """The value under ``key``, or None."""
        ...

    def exists(self, namespace: str, key: bytes) -> bool: ...

    def set(self, namespace: str, key: bytes, value: bytes, *, quota: Quota | None = None) -> None:
        """Store ``value`` under ``key``, replacing any value there."""
        ...

    def delete(self, namespace: str, key: bytes) -> bool:
        """Remove ``key``; True if it was there."""
        ...

    def list_keys(
        self,
        namespace: str,
        *,
        prefix: bytes = b"",
        cursor: bytes | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> KeyPage:
        """Up to ``limit`` keys starting with ``prefix``, after ``cursor`` (exclusive),
        in ascending byte order; the page's cursor is None when no key is left."""
        ...

    def increment(
        self, namespace: str, key: bytes, delta: int, *, quota: Quota | None = None
    ) -> int:
        """Add ``delta`` to the counter under ``key`` (absent: 0) and return the new
        value; :class:`NotACounter` if the value there is not a decimal integer or
        the result does not fit a signed 64-bit integer."""
        ...

    def cas(
        self,
        namespace: str,
        key: bytes,
        expected: bytes | None,
        value: bytes,
        *,
        quota: Quota | None = None,
    ) -> bool:
        """Set ``key`` to ``value`` if its current value is ``expected`` (None: the
        key is absent); True if it was set."""
        ...

    def get_many(self, namespace: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """The values of ``keys``, in order (None where absent)."""
        ...

    def set_many(
        self,
        namespace: str,
        items: Iterable[tuple[bytes, bytes]],
        *,
        quota: Quota | None = None,
    ) -> None:
        """Store every ``(key, value)`` in one transaction (a repeated key: the last
        wins); all or nothing."""
        ...

    def delete_many(self, namespace: str, keys: Iterable[bytes]) -> int:
        """Remove ``keys`` in one transaction; how many were there."""
        ...

    def usage(self, namespace: str) -> Usage:
        """What ``namespace`` holds (O(1))."""
        ...

    def group_usage(self, parent: str) -> Usage:
        """What the namespaces whose parent is ``parent`` hold together (from the
        counters, never a scan of keys)."""
        ...

    def drop(self, namespace: str) -> Usage:
        """Remove the namespace and every key in it; what it held."""
        ...

    def namespaces(self) -> list[str]:
        """Every namespace holding at least one key, sorted."""
        ...

    def close(self) -> None:
        """Release the store; later calls raise StorageError. Idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`close`."""
        ...


# --- helpers shared by the backends ----------------------------------------------------


def check_key(key: object, what: str = "key") -> bytes:
    """``key`` as bytes, or InvalidKey."""
    if type(key) is not bytes:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise InvalidKey(f"a {what} must be bytes, got {type(key).__name__}")
        key = bytes(key)
    if len(key) > MAX_KEY_BYTES:
        raise InvalidKey(f"a {what} is at most {MAX_KEY_BYTES} bytes, got {len(key)}")
    return key


def check_value(value: object) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"a value must be bytes, got {type(value).__name__}")


def check_limit(limit: object) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"a page limit is an int from 1 to {MAX_PAGE}, got {limit!r}")
    return limit


def check_delta(delta: object) -> int:
    if type(delta) is not int or not S64_MIN <= delta <= S64_MAX:
        raise ValueError(f"an increment is a signed 64-bit int, got {delta!r:.60}")
    return delta


def prefix_end(prefix: bytes) -> bytes | None:
    """The least byte string greater than every string starting with ``prefix``
    (None: there is none, the prefix is all 0xff or empty)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def start_after(prefix: bytes, cursor: bytes | None) -> tuple[bytes, bool]:
    """Where a listing starts: ``(key, exclusive)``."""
    if cursor is not None and cursor >= prefix:
        return cursor, True
    return prefix, False


def next_counter(current: bytes | None, delta: int, namespace: str, key: bytes) -> int:
    """The counter after adding ``delta`` to ``current`` (decimal text or None)."""
    if current is None:
        return delta
    if _COUNTER.fullmatch(current) is None:
        shown = current[:40] + (b"..." if len(current) > 40 else b"")
        raise NotACounter(
            f"cannot increment key {key[:80]!r} in {namespace!r}: its value {shown!r} is not "
            "a counter (decimal integer text such as b'42'); nothing was written"
        )
    result = int(current) + delta
    if not S64_MIN <= result <= S64_MAX:
        raise NotACounter(
            f"cannot increment key {key[:80]!r} in {namespace!r}: {int(current)} + {delta} "
            "does not fit a signed 64-bit integer; nothing was written"
        )
    return result


def encode_counter(value: int) -> bytes:
    return str(value).encode("ascii")


def size_of(key: bytes, value: bytes | None) -> int:
    return 0 if value is None else len(key) + len(value)


class Plan(NamedTuple):
    """A write worked out against the current values: what to put (None: delete),
    the change in usage, and the write's size (keys + values put)."""

    final: dict[bytes, bytes | None]
    delta_bytes: int
    delta_keys: int
    size: int


def plan(
    changes: Iterable[tuple[bytes, bytes | None]], current: Callable[[bytes], bytes | None]
) -> Plan:
    """Work out ``changes`` (``value`` None: delete) against ``current(key)``."""
    final: dict[bytes, bytes | None] = {}
    size = 0
    for key, value in changes:
        final[key] = value
        if value is not None:
            size += len(key) + len(value)
    delta_bytes = delta_keys = 0
    for key, value in final.items():
        old = current(key)
        delta_bytes += size_of(key, value) - size_of(key, old)
        delta_keys += (value is not None) - (old is not None)
    return Plan(final, delta_bytes, delta_keys, size)


def plus(usage: Usage, delta_bytes: int, delta_keys: int) -> Usage:
    return Usage(usage.bytes + delta_bytes, usage.keys + delta_keys)


CLOSED: Final = "the storage backend is closed"
