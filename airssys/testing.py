"""Test helpers: run a Python component's logic in plain Python, no WASM build.

from airssys.testing import MockHost

with MockHost.load("components/counter/app.py") as host:
    assert host.deliver({"add": 2}) == {"count": 2}
    assert host.sent == []

The services work too: ``airssys.sdk.kv`` against an in-memory store (the real
:class:`airssys.storage.KeyValue` over a :class:`~airssys.storage.MemoryBackend`,
every bucket granted unless ``grants`` says otherwise), ``airssys.sdk.http`` and
``airssys.sdk.process`` against functions the test sets (``host.http_handler``,
``host.process_handler``), every call recorded (``host.fetched``, ``host.ran``).

Durable state (``airssys.sdk.durable``, ``@on_snapshot``/``@on_restore``) goes through
``host.snapshot()`` and ``host.restore(state)``, as the component glue calls it:

with MockHost.load("components/counter/app.py") as host:
    host.deliver({"add": 2})
    state = host.snapshot()
with MockHost.load("components/counter/app.py") as fresh:  # a fresh module
    fresh.restore(state)
    assert fresh.deliver({"add": 1}) == {"count": 3}
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

from . import codec, sdk
from .errors import CapabilityDenied, HandlerError
from .runtime import keyvalue_error, text_error
from .sdk import http as sdk_http
from .sdk import kv as sdk_kv
from .sdk import process as sdk_process
from .security import CompiledGrants, Grants
from .storage import Bucket, KeyValue, MemoryBackend

__all__ = ("HttpHandler", "MockHost", "ProcessHandler", "Sent")

HttpHandler = Callable[
    [str, str, list[tuple[str, str]], bytes], tuple[int, list[tuple[str, str]], bytes]
]
"""``(method, url, headers, body) -> (status, headers, body)``"""
ProcessHandler = Callable[[str, list[str], bytes], tuple[int, bytes, bytes]]
"""``(command, args, stdin) -> (exit code, stdout, stderr)``"""


@dataclass(frozen=True, slots=True)
class Sent:
    """One outgoing message the component made, decoded."""

    kind: str  # "send", "publish" or "request"
    to: str
    value: Any
    correlation_id: str | None = None


class MockHost:
    """A stand-in host: records what the component sends, logs and requests.

    ``deliver`` runs the component's handler exactly as the component glue does
    (a ``Reject``, or a payload that cannot be decoded, becomes the ``HandlerError``
    the asker would get; any other exception propagates, as a crash would), with
    the codecs a component carries (CBOR through ``airssys.codec.PURE_CBOR``).
    ``deliver_payload`` delivers bytes as they are. Use ``reply_to``/``fail`` to answer
    the component's requests through its ``@on_callback`` handler, and
    ``snapshot``/``restore`` to take and put back its durable state.

    ``grants``: what the component may use (default: everything, so only the
    handlers decide); a call past them raises the SDK's denial, as in a component.
    ``storage``: the key-value service (default: a fresh in-memory one; pass the
    ``storage`` of another MockHost to see its data, as after a restart).
    """

    def __init__(
        self,
        handlers: sdk.Handlers,
        *,
        address: str = "/test/component",
        grants: Grants | None = None,
        storage: KeyValue | None = None,
    ) -> None:
        self.address = address
        self.handlers = handlers
        self.sent: list[Sent] = []
        self.logs: list[tuple[str, str]] = []
        self.refuse: set[str] = set()
        self.checks: CompiledGrants = (
            grants if grants is not None else Grants.everything()
        ).compile(address)
        self.storage = (
            storage if storage is not None else KeyValue(MemoryBackend(), checks=self.checks)
        )
        """The key-value service the component's ``kv`` calls reach."""
        self.http_handler: HttpHandler | None = None
        self.process_handler: ProcessHandler | None = None
        self.fetched: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.ran: list[tuple[str, list[str], bytes]] = []
        self._ids = itertools.count(1)
        self._saved: tuple[sdk.Backend | None, sdk.Handlers] | None = None

    @classmethod
    def load(
        cls,
        path: str | PathLike[str],
        *,
        address: str = "/test/component",
        grants: Grants | None = None,
        storage: KeyValue | None = None,
    ) -> MockHost:
        """Import a component module from its file into a fresh handler registry."""
        handlers = sdk.Handlers()
        previous = sdk.swap_handlers(handlers)
        try:
            _import(Path(path))
        finally:
            sdk.swap_handlers(previous)
        sdk.check_handlers(handlers)  # as the component glue does after the import
        return cls(handlers, address=address, grants=grants, storage=storage)

    # --- the Backend the SDK calls -------------------------------------------------

    def _check(self, to: str) -> None:
        if to in self.refuse:
            raise sdk.MessagingError(f"no actor at {to!r}")

    def send(self, to: str, payload: bytes) -> None:
        self._check(to)
        self.sent.append(Sent("send", to, codec.decode(payload)))

    def publish(self, topic: str, payload: bytes) -> None:
        self.sent.append(Sent("publish", topic, codec.decode(payload)))

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._check(to)
        correlation_id = f"{self.address}#{next(self._ids)}"
        self.sent.append(Sent("request", to, codec.decode(payload), correlation_id))
        return correlation_id

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def self_address(self) -> str:
        return self.address

    # --- the services (airssys.sdk.Services) ------------------------------------------

    def kv_open(self, name: str) -> _MockBucket:
        try:
            return _MockBucket(name, self.storage.open(name))
        except Exception as exc:
            raise _storage_error(exc, name) from None

    def http_fetch(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_ms: int,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            self.checks.check_url(url)
        except CapabilityDenied as exc:
            raise sdk_http._error(text_error("http.fetch", exc)) from None
        self.fetched.append((method, url, headers, body))
        if self.http_handler is None:
            raise sdk_http.HttpError(
                f"{method} {url}: MockHost has no HTTP (set host.http_handler to answer)"
            )
        status, got, content = self.http_handler(method, url, headers, body)
        return status, [(k.lower(), v) for k, v in got], bytes(content)

    def process_run(
        self, command: str, args: list[str], stdin: bytes, timeout_ms: int
    ) -> tuple[int, bytes, bytes, bool]:
        try:
            self.checks.check_process(command, args)
        except CapabilityDenied as exc:
            raise sdk_process._error(text_error("process.run", exc)) from None
        self.ran.append((command, args, stdin))
        if self.process_handler is None:
            raise sdk_process.ProcessError(
                f"{command}: MockHost runs no processes (set host.process_handler to answer)"
            )
        code, out, err = self.process_handler(command, args, stdin)
        return code, bytes(out), bytes(err), False

    # --- driving the component ----------------------------------------------------------

    def __enter__(self) -> MockHost:
        self._saved = (sdk.use_backend(self), sdk.swap_handlers(self.handlers))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        sdk.use_backend(self._saved[0])
        sdk.swap_handlers(self._saved[1])
        self._saved = None

    def deliver(self, value: Any, *, codec_name: str = "json", sender: str = "/test/sender") -> Any:
        """Deliver ``value`` as a message; returns the decoded reply (None: no reply)."""
        return self.deliver_payload(codec.encode(value, codec_name), sender=sender)

    def deliver_payload(self, payload: bytes, *, sender: str = "/test/sender") -> Any:
        """Deliver encoded bytes as they are (a broken body too); returns the decoded reply.

        A payload the component cannot decode fails this message only: HandlerError,
        as the real component answers, and the module's state is kept.
        """
        self._require_entered()
        try:
            reply = sdk.dispatch_message(sender, bytes(payload))
        except sdk.Reject as exc:
            raise HandlerError(str(exc)) from exc
        return None if reply is None else codec.decode(reply)

    def reply_to(self, correlation_id: str, value: Any, *, codec_name: str = "json") -> None:
        """Answer one of the component's requests."""
        self._require_entered()
        sdk.dispatch_callback(correlation_id, codec.encode(value, codec_name))

    def fail(self, correlation_id: str, error: str) -> None:
        """Fail one of the component's requests (a timeout, a dead address...)."""
        self._require_entered()
        sdk.dispatch_callback(correlation_id, error)

    def snapshot(self) -> bytes:
        """The component's state as its ``snapshot`` export returns it: the
        ``durable()`` state as JSON, ``@on_snapshot``'s bytes, or ``b""``.

        State that cannot be encoded raises :class:`airssys.sdk.StateError` (inside a
        component, a trap: ``snapshot`` has no error result).
        """
        self._require_entered()
        return sdk.dispatch_snapshot()

    def restore(self, state: bytes) -> None:
        """Put back a state :meth:`snapshot` returned, as the ``restore`` export does
        (on a fresh instance, before any message: load a fresh MockHost for that).

        Bytes the component refuses (a ``Reject``, or a default snapshot that does not
        decode) raise :class:`~airssys.errors.HandlerError`, the ``err`` the host gets;
        any other exception propagates, as a crash would.
        """
        self._require_entered()
        try:
            sdk.dispatch_restore(bytes(state))
        except sdk.Reject as exc:
            raise HandlerError(str(exc)) from exc

    def requests(self) -> list[Sent]:
        return [s for s in self.sent if s.kind == "request"]

    def _require_entered(self) -> None:
        if self._saved is None:
            raise RuntimeError("use the MockHost in a `with` block")


def _storage_error(exc: Exception, bucket: str) -> sdk_kv.StorageError:
    """The SDK's exception for a storage call that raised ``exc``: through the
    wasi:keyvalue error the runtime answers a component with, as the SDK reads it."""
    error = keyvalue_error("keyvalue", exc)
    return sdk_kv._error(error.tag, str(error.payload or ""), bucket)


class _MockBucket:
    """A storage Bucket as the SDK's kv handle: its errors as the SDK's."""

    __slots__ = ("_bucket", "name")

    def __init__(self, name: str, bucket: Bucket) -> None:
        self.name = name
        self._bucket = bucket

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # QuotaExceeded, InvalidKey, NotACounter...
            raise _storage_error(exc, self.name) from None

    def get(self, key: str) -> bytes | None:
        return self._call(self._bucket.get, key)  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes) -> None:
        self._call(self._bucket.set, key, value)

    def delete(self, key: str) -> None:
        self._call(self._bucket.delete, key)

    def exists(self, key: str) -> bool:
        return bool(self._call(self._bucket.exists, key))

    def list_keys(self, cursor: str | None) -> tuple[list[str], str | None]:
        keys, next_cursor = self._call(self._bucket.list_keys, cursor)
        return keys, next_cursor

    def scan(self, prefix: str, cursor: str | None) -> tuple[list[str], str | None]:
        keys, next_cursor = self._call(self._bucket.scan, prefix, cursor)
        return keys, next_cursor

    def increment(self, key: str, delta: int) -> int:
        return int(self._call(self._bucket.increment, key, delta))

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return list(self._call(self._bucket.get_many, keys))

    def set_many(self, pairs: list[tuple[str, bytes]]) -> None:
        self._call(self._bucket.set_many, pairs)

    def delete_many(self, keys: list[str]) -> None:
        self._call(self._bucket.delete_many, keys)

    def compare_and_swap(self, key: str, expected: bytes | None, value: bytes) -> bool:
        return bool(self._call(self._bucket.cas, key, expected, value))

    def close(self) -> None:
        pass


def _import(path: Path) -> ModuleType:
    name = f"_airssys_component_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a component module from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module
