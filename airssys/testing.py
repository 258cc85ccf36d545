"""Test helpers: run a Python component's logic in plain Python, no WASM build.

from airssys.testing import MockHost

with MockHost.load("components/counter/app.py") as host:
    assert host.deliver({"add": 2}) == {"count": 2}
    assert host.sent == []
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from . import codec, sdk

__all__ = ("MockHost", "Sent")


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
    the component's requests through its ``@on_callback`` handler.
    """

    def __init__(self, handlers: sdk.Handlers, *, address: str = "/test/component") -> None:
        self.address = address
        self.handlers = handlers
        self.sent: list[Sent] = []
        self.logs: list[tuple[str, str]] = []
        self.refuse: set[str] = set()
        self._ids = itertools.count(1)
        self._saved: tuple[sdk.Backend | None, sdk.Handlers] | None = None

    @classmethod
    def load(cls, path: str | PathLike[str], *, address: str = "/test/component") -> MockHost:
        """Import a component module from its file into a fresh handler registry."""
        handlers = sdk.Handlers()
        previous = sdk.swap_handlers(handlers)
        try:
            _import(Path(path))
        finally:
            sdk.swap_handlers(previous)
        return cls(handlers, address=address)

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

    # --- driving the component ----------------------------------------------------------

    def __enter__(self) -> MockHost:
        self._saved = (sdk.use_backend(self), sdk.swap_handlers(self.handlers))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        from .errors import HandlerError

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

    def requests(self) -> list[Sent]:
        return [s for s in self.sent if s.kind == "request"]

    def _require_entered(self) -> None:
        if self._saved is None:
            raise RuntimeError("use the MockHost in a `with` block")


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
