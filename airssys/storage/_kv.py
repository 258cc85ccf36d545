"""The key-value service a component's host calls use: buckets behind its grants.

:class:`KeyValue` is built once per component (its address, compiled grants and
quota); :meth:`KeyValue.open` checks the bucket against the grants and returns a
:class:`Bucket`, whose methods mirror wasi:keyvalue 0.2.0-draft2 (``store``,
``atomics``, ``batch``) plus a prefix scan. Keys are text (UTF-8 in the backend),
values bytes.

**Isolation.** A bucket is stored in the namespace ``<component>/<bucket>``: two
components each opening ``"default"`` see different data, and a component keeps its
data across restarts and upgrades as long as its address stays. A bucket the
operator's policy shares (``Policy.shared_buckets``) is stored in ``shared/<bucket>``
for every component granted it by name. Bucket names hold no ``/``, and addresses
start with one, so no two of these namespaces can be the same.

**Quotas.** ``quota`` (bytes: keys plus values) and ``max_keys`` bound all of a
component's own buckets together. A write that would pass either raises
:class:`~airssys.errors.QuotaExceeded` naming the quota, the usage and the write's
size, and writes nothing (``set_many`` included: one transaction). Writes into a
shared bucket are bounded by the same numbers applied to that bucket alone (so no
component can grow it past what it could store itself), and do not count toward
the component's own usage.

**Audited.** Every refusal a component can cause here reaches the audit: a bucket
outside the grants through the checks (kind ``storage``), a bucket name or key
breaking the rules as kind ``name``, a write past a quota as kind ``quota`` (each
with the error's text as the reason). The hook is ``on_refuse``, by default the one
the component's checks report their denials to.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Concatenate, Final, NamedTuple, ParamSpec, TypeVar, final

from .._logging import get_logger
from ..errors import InvalidName, QuotaExceeded
from ..names import BAD_CHAR, MAX_ADDRESS
from ..security import CompiledGrants, DenyHook, Policy, TrustLevel
from ._backend import (
    DEFAULT_PAGE,
    MAX_KEY_BYTES,
    Backend,
    InvalidKey,
    KeyPage,
    Quota,
    Usage,
)

__all__ = (
    "BUCKET_RULE",
    "MAX_BUCKET",
    "SHARED",
    "Bucket",
    "KeyResponse",
    "KeyValue",
    "check_bucket_name",
)

MAX_BUCKET: Final = 255
SHARED: Final = "shared"
"""The namespace root of shared buckets (``shared/<bucket>``); no component may be
named so."""
BUCKET_RULE: Final = (
    f"a bucket name is 1 to {MAX_BUCKET} characters, with no '/', no control characters "
    "and no lone surrogates"
)
_BAD_BUCKET_CHAR: Final = re.compile("[/\x00-\x1f\x7f-\x9f\ud800-\udfff]")
NAME: Final = "name"
"""The audit kind of a refused bucket name or key."""
QUOTA: Final = "quota"
"""The audit kind of a write refused by a quota."""
_log = get_logger("airssys.storage.kv")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _checks_hook(checks: CompiledGrants) -> DenyHook | None:
    """The hook the component's checks report denials to (its audit scope): the
    storage's refusals go to the same place."""
    return checks.on_deny


def _report(hook: DenyHook | None, kind: str, resource: str, exc: Exception) -> None:
    if hook is None:
        return
    try:
        hook(kind, resource, str(exc))
    except Exception:  # the audit must not turn a refusal into a crash
        _log.exception("storage refusal hook failed", kind=kind)


class KeyResponse(NamedTuple):
    """A page of keys (ascending) and the cursor for the next one, None at the end
    (wasi:keyvalue's ``key-response``). The cursor is the last key returned."""

    keys: list[str]
    cursor: str | None


def check_bucket_name(name: object) -> str:
    """Return ``name`` if it is a valid bucket name, else raise InvalidName naming the
    rule."""
    if not isinstance(name, str):
        raise InvalidName(
            f"a bucket name must be a string, got {type(name).__name__}; {BUCKET_RULE}"
        )
    if not 1 <= len(name) <= MAX_BUCKET:
        raise InvalidName(f"bucket name {name[:60]!r} has {len(name)} characters; {BUCKET_RULE}")
    bad = _BAD_BUCKET_CHAR.search(name)
    if bad is not None:
        raise InvalidName(
            f"bucket name {name[:60]!r} holds {bad.group()!r} at index {bad.start()}; {BUCKET_RULE}"
        )
    return name


def _key(key: object, what: str = "key") -> bytes:
    if not isinstance(key, str):
        raise InvalidKey(f"a {what} must be a string, got {type(key).__name__}")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"a {what} must be valid text: {exc.reason} at index {exc.start}") from exc
    if len(raw) > MAX_KEY_BYTES:
        raise InvalidKey(f"a {what} is at most {MAX_KEY_BYTES} bytes of UTF-8, got {len(raw)}")
    return raw


def _text(key: bytes) -> str:
    # keys written through a Bucket are UTF-8; one written otherwise shows with U+FFFD
    return key.decode("utf-8", "replace")


def _response(page: KeyPage) -> KeyResponse:
    return KeyResponse(
        [_text(k) for k in page.keys], None if page.cursor is None else _text(page.cursor)
    )


@final
class KeyValue:
    """One component's storage: ``open(bucket)`` behind its grants, quotas over its
    buckets. Thread-safe (its state is read-only; the backend is thread-safe).

    ``checks``: the component's compiled grants (``check_bucket`` decides). ``component``
    defaults to ``checks.component`` (its address). ``quota``/``max_keys``: from
    ``Policy.storage_limits`` (None: no limit). ``shared``: the policy's shared buckets.
    ``on_refuse(kind, resource, reason)``: where name and quota refusals are reported
    (default: the hook of ``checks``, the component's audit).
    """

    __slots__ = ("_group", "_limits", "_on_refuse", "_shared", "backend", "checks", "component")

    def __init__(
        self,
        backend: Backend,
        *,
        checks: CompiledGrants,
        component: str | None = None,
        quota: int | None = None,
        max_keys: int | None = None,
        shared: Iterable[str] = frozenset(),
        on_refuse: DenyHook | None = None,
    ) -> None:
        component = checks.component if component is None else component
        if not isinstance(component, str) or not 1 <= len(component) <= MAX_ADDRESS:
            raise InvalidName(
                f"a component's storage identity is 1 to {MAX_ADDRESS} characters, "
                f"got {component!r:.80}"
            )
        if BAD_CHAR.search(component) is not None:
            raise InvalidName(f"component {component!r:.80} holds a control character")
        if component == SHARED:
            raise InvalidName(
                f"no component may be named {SHARED!r}: it is the root of the shared buckets"
            )
        self.backend = backend
        self.checks = checks
        self.component = component
        self._on_refuse = on_refuse if on_refuse is not None else _checks_hook(checks)
        self._shared = frozenset(shared)
        self._limits = (quota, max_keys)
        self._group = Quota(quota, max_keys, "group", f"component {component!r}")

    @classmethod
    def from_policy(
        cls,
        backend: Backend,
        checks: CompiledGrants,
        policy: Policy,
        trust: TrustLevel | str,
        *,
        component: str | None = None,
    ) -> KeyValue:
        """The service for a component admitted under ``policy`` at ``trust``: its
        quota from ``policy.storage_limits``, the policy's shared buckets."""
        quota, max_keys = policy.storage_limits(checks.grants, trust)
        return cls(
            backend,
            checks=checks,
            component=component,
            quota=quota,
            max_keys=max_keys,
            shared=policy.shared_buckets,
        )

    @property
    def quota(self) -> int | None:
        return self._limits[0]

    @property
    def max_keys(self) -> int | None:
        return self._limits[1]

    def namespace(self, bucket: str) -> str:
        """Where ``bucket`` is stored for this component (no grant check)."""
        check_bucket_name(bucket)
        return f"{SHARED}/{bucket}" if bucket in self._shared else f"{self.component}/{bucket}"

    def open(self, bucket: str) -> Bucket:
        """The bucket, if the grants allow it: InvalidName (a ValueError) for a name
        breaking :data:`BUCKET_RULE`, CapabilityDenied (a PermissionError) for one not
        granted."""
        try:
            check_bucket_name(bucket)
        except InvalidName as exc:
            _report(self._on_refuse, NAME, str(bucket), exc)
            raise
        self.checks.check_bucket(bucket)
        hook = self._on_refuse
        if bucket in self._shared:
            quota = Quota(*self._limits, "namespace", f"shared bucket {bucket!r}")
            return Bucket(
                self.backend, bucket, f"{SHARED}/{bucket}", quota, shared=True, on_refuse=hook
            )
        return Bucket(
            self.backend, bucket, f"{self.component}/{bucket}", self._group, on_refuse=hook
        )

    def usage(self) -> Usage:
        """What the component's own buckets hold together (shared ones aside)."""
        return self.backend.group_usage(self.component)

    def __repr__(self) -> str:
        return f"<KeyValue for {self.component!r} quota={self.quota} max_keys={self.max_keys}>"


def _audited(
    method: Callable[Concatenate[Bucket, _P], _R],
) -> Callable[Concatenate[Bucket, _P], _R]:
    """A bucket method whose key and quota refusals are reported before they are raised."""

    @functools.wraps(method)
    def run(self: Bucket, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except InvalidKey as exc:
            _report(self._on_refuse, NAME, f"bucket {self.name}", exc)
            raise
        except QuotaExceeded as exc:
            _report(self._on_refuse, QUOTA, f"bucket {self.name}", exc)
            raise

    return run


@final
class Bucket:
    """One open bucket (wasi:keyvalue's ``bucket`` resource). Keys are text of at
    most :data:`~airssys.storage.MAX_KEY_BYTES` bytes of UTF-8; values bytes. A key
    or a write refused by the rules or the quota is reported to ``on_refuse``."""

    __slots__ = ("_backend", "_on_refuse", "_quota", "name", "namespace", "shared")

    def __init__(
        self,
        backend: Backend,
        name: str,
        namespace: str,
        quota: Quota,
        *,
        shared: bool = False,
        on_refuse: DenyHook | None = None,
    ) -> None:
        self._backend = backend
        self._quota = None if quota.unlimited else quota
        self._on_refuse = on_refuse
        self.name = name
        self.namespace = namespace
        self.shared = shared

    # --- store -----------------------------------------------------------------------

    @_audited
    def get(self, key: str) -> bytes | None:
        return self._backend.get(self.namespace, _key(key))

    @_audited
    def set(self, key: str, value: bytes) -> None:
        self._backend.set(self.namespace, _key(key), value, quota=self._quota)

    @_audited
    def delete(self, key: str) -> bool:
        """Remove ``key`` (absent: nothing to do); True if it was there."""
        return self._backend.delete(self.namespace, _key(key))

    @_audited
    def exists(self, key: str) -> bool:
        return self._backend.exists(self.namespace, _key(key))

    @_audited
    def list_keys(self, cursor: str | None = None, *, limit: int = DEFAULT_PAGE) -> KeyResponse:
        """Up to ``limit`` keys after ``cursor`` (None: from the start)."""
        raw = None if cursor is None else _key(cursor, "cursor")
        return _response(self._backend.list_keys(self.namespace, cursor=raw, limit=limit))

    @_audited
    def scan(
        self, prefix: str, cursor: str | None = None, *, limit: int = DEFAULT_PAGE
    ) -> KeyResponse:
        """Up to ``limit`` keys starting with ``prefix``, after ``cursor``."""
        raw = None if cursor is None else _key(cursor, "cursor")
        page = self._backend.list_keys(
            self.namespace, prefix=_key(prefix, "prefix"), cursor=raw, limit=limit
        )
        return _response(page)

    # --- atomics -----------------------------------------------------------------------

    @_audited
    def increment(self, key: str, delta: int) -> int:
        """Add ``delta`` to the counter (decimal text; absent: 0) and return the new
        value; NotACounter (a ValueError) if the value is not one or would overflow
        a signed 64-bit integer."""
        return self._backend.increment(self.namespace, _key(key), delta, quota=self._quota)

    @_audited
    def cas(self, key: str, expected: bytes | None, value: bytes) -> bool:
        """Set ``key`` to ``value`` if it holds ``expected`` (None: absent); True if set."""
        return self._backend.cas(self.namespace, _key(key), expected, value, quota=self._quota)

    # --- batch -------------------------------------------------------------------------

    @_audited
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, in order, None where absent."""
        return self._backend.get_many(self.namespace, [_key(k) for k in keys])

    @_audited
    def set_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> None:
        """Store every pair in one transaction: all of them, or (on any error,
        QuotaExceeded included) none."""
        pairs = items.items() if isinstance(items, Mapping) else items
        self._backend.set_many(self.namespace, [(_key(k), v) for k, v in pairs], quota=self._quota)

    @_audited
    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove ``keys`` in one transaction; how many were there."""
        return self._backend.delete_many(self.namespace, [_key(k) for k in keys])

    def usage(self) -> Usage:
        """What this bucket holds."""
        return self._backend.usage(self.namespace)

    def __repr__(self) -> str:
        kind = "shared bucket" if self.shared else "bucket"
        return f"<{kind} {self.name!r} in {self.namespace!r}>"
