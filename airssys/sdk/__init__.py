"""Write an airssys component in Python.

    from airssys.sdk import Message, log, on_message

    @on_message
    def handle(message: Message) -> object:
        log("info", f"{message.sender} sent {message.value!r}")
        return {"echo": message.value}      # answered in the request's codec

``airssys build <dir>`` bundles this module (with ``airssys.codec``) into the
component; ``airssys.testing.MockHost`` runs the same code in plain Python.

* A handler gets a :class:`Message` (sender, decoded ``value``, ``codec``, raw
  ``payload``) and returns the reply value (None: no reply), encoded with the
  request's codec; return :class:`Reply` to choose another codec.
* ``raise Reject("why")`` fails only that message (the asker gets a HandlerError).
  So does a payload that cannot be decoded: ``message.value`` raises
  :class:`PayloadError` (a Reject), and the component keeps its state. Any other
  exception crashes the component; its supervisor restarts it on a fresh instance.
* Codecs inside components: raw, JSON, CBOR (a pure-Python subset:
  :data:`airssys.codec.PURE_CBOR`) and MessagePack. The SDK runs the same codecs
  under ``airssys.testing.MockHost``.
* ``send``, ``publish``, ``request`` (the reply comes to the ``@on_callback``
  handler as a :class:`Callback`), ``log`` and ``self_address`` talk to the host.
* Host services, each behind the component's grants: :mod:`airssys.sdk.kv`
  (``kv.open("default").set("k", b"v")``), :mod:`airssys.sdk.http`
  (``http.get(url)``) and :mod:`airssys.sdk.process` (``process.run("/bin/echo",
  ["hi"])``). A refusal or failure raises a :class:`ServiceError` (a denial a
  :class:`Denied`), which fails only the message when not caught, like ``Reject``.
* Durable state: ``state = durable(count=0)`` registers a dict whose contents the
  component's snapshot carries (``airssys:component/snapshot``), as JSON; or
  ``@on_snapshot`` / ``@on_restore`` choose the bytes themselves (they override it).

This module imports nothing but the standard library, ``airssys.codec`` and
``airssys.errors`` (the import contract keeps the host side out): it
runs inside WebAssembly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

from ..codec import COMPONENT_PREFIXES as _PREFIXES
from ..codec import (
    JSON,
    Codec,
    component_codec,
    decode_with,
    encode,
    split,
)
from ..errors import CodecError

__all__ = (
    "LEVELS",
    "Backend",
    "Callback",
    "Denied",
    "Durable",
    "Handlers",
    "Message",
    "MessagingError",
    "PayloadError",
    "Reject",
    "Reply",
    "ServiceError",
    "Services",
    "StateError",
    "check_handlers",
    "dispatch_bulk",
    "dispatch_callback",
    "dispatch_message",
    "dispatch_restore",
    "dispatch_snapshot",
    "durable",
    "log",
    "on_callback",
    "on_message",
    "on_restore",
    "on_snapshot",
    "publish",
    "request",
    "self_address",
    "send",
    "swap_handlers",
    "use_backend",
)

LEVELS = ("trace", "debug", "info", "warn", "error")


class Reject(Exception):
    """Raise from a handler to fail this message only (the component keeps running)."""


class PayloadError(Reject, CodecError):
    """The payload cannot be decoded: fails this message only, like :class:`Reject`."""


class MessagingError(Exception):
    """The host refused a send, publish or request (unknown address, full mailbox...)."""


class ServiceError(Reject):
    """A host service (storage, HTTP, processes) refused or failed a call. Uncaught, it
    fails only the message being handled, with this message as the error."""


class Denied(ServiceError, PermissionError):
    """The component's grants do not allow the call; the message names the grant."""


class StateError(Reject, ValueError):
    """Durable state that cannot be snapshotted or restored, saying why.

    From a restore it becomes the ``err`` the host gets (the state is left as it
    was); from a snapshot (which has no error channel) it crashes the component.
    """


def _service_error(
    message: str, error: type[ServiceError], denied: type[ServiceError]
) -> Exception:
    """``denied(message)`` for a capability denial, else ``error(message)``."""
    return (denied if message.startswith("capability denied:") else error)(message)


class Message:
    """One incoming message. ``value`` is decoded on first use.

    A payload that cannot be decoded raises :class:`PayloadError` from ``value``
    (or from the constructor, for an unknown codec prefix): the message fails with
    a HandlerError for its asker and the component keeps running.
    """

    __slots__ = ("_at", "_codec", "_value", "codec", "payload", "sender")

    def __init__(self, sender: str, payload: bytes) -> None:
        self.sender = sender
        self.payload = payload
        # the four codecs' prefixes are one or two bytes: a dict lookup, no varint loop
        # (inside wasm every Python-level step costs; this is the per-message path)
        pair = _PREFIXES.get(payload[:1])
        if pair is not None:
            self._at = 1
        else:
            pair = _PREFIXES.get(payload[:2])
            if pair is None:
                try:
                    found, _ = split(payload)
                except CodecError as exc:
                    raise PayloadError(str(exc)) from None
                pair = found, component_codec(found)  # pragma: no cover - all are above
            self._at = len(pair[0].prefix)
        self.codec: Codec = pair[0]
        self._codec: Codec = pair[1]  # how it runs here (CBOR: the pure-Python one)
        self._value: Any = _UNSET

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            try:
                self._value = self._codec.loads(self.payload[self._at :])
            except CodecError as exc:
                raise PayloadError(str(exc)) from None
            except Exception as exc:
                why = str(exc) or type(exc).__name__
                raise PayloadError(f"payload is not valid {self._codec.name}: {why}") from None
        return self._value

    def __repr__(self) -> str:
        return f"Message(sender={self.sender!r}, codec={self._codec.name!r})"


class _Unset:
    pass


_UNSET = _Unset()


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply in a codec of your choice: ``return Reply(value, "cbor")``."""

    value: Any
    codec: str = JSON.name


@dataclass(frozen=True, slots=True)
class Callback:
    """The outcome of a ``request``: ``ok`` with the decoded ``value``, or an ``error``."""

    correlation_id: str
    ok: bool
    value: Any = None
    error: str | None = None


class Backend(Protocol):
    """Where the messaging and logging calls go: the host imports, or a MockHost."""

    def send(self, to: str, payload: bytes) -> None: ...
    def publish(self, topic: str, payload: bytes) -> None: ...
    def request(self, to: str, payload: bytes, timeout_ms: int) -> str: ...
    def log(self, level: str, message: str) -> None: ...
    def self_address(self) -> str: ...


class Services(Protocol):
    """The host services a backend provides besides messaging (the component glue and
    ``airssys.testing.MockHost`` do); each raises a :class:`ServiceError` subclass."""

    def kv_open(self, name: str) -> Any: ...
    def http_fetch(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_ms: int,
    ) -> tuple[int, list[tuple[str, str]], bytes]: ...
    def process_run(
        self, command: str, args: list[str], stdin: bytes, timeout_ms: int
    ) -> tuple[int, bytes, bytes, bool]: ...


@dataclass(slots=True)
class Handlers:
    """What a component module registered."""

    message: Callable[[Message], Any] | None = None
    callback: Callable[[Callback], Any] | None = None
    state: Durable | None = None
    snapshot: Callable[[], bytes] | None = None
    restore: Callable[[bytes], Any] | None = None
    defaults: dict[str, bytes] = field(default_factory=dict)
    """The durable state's initial values, each encoded (what a restore starts from)."""


_handlers = Handlers()
_backend: Backend | None = None


def on_message(fn: Callable[[Message], Any]) -> Callable[[Message], Any]:
    """Register the component's message handler."""
    _handlers.message = fn
    return fn


def on_callback(fn: Callable[[Callback], Any]) -> Callable[[Callback], Any]:
    """Register the handler for replies to ``request``."""
    _handlers.callback = fn
    return fn


def on_snapshot(fn: Callable[[], bytes]) -> Callable[[], bytes]:
    """Register the function that returns the component's state as bytes.

    With :func:`on_restore` (register both), it overrides :func:`durable` state.
    """
    _handlers.snapshot = fn
    return fn


def on_restore(fn: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """Register the function that puts back bytes :func:`on_snapshot` returned
    (in a fresh instance, before any message). ``raise Reject("why")`` refuses them."""
    _handlers.restore = fn
    return fn


class Durable(dict[str, Any]):
    """The component's durable state (from :func:`durable`): a dict whose contents its
    snapshot carries. Values are JSON values: None, bool, int, float, str, lists and
    dicts with str keys, nested up to 400 levels."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Durable({dict.__repr__(self)})"


def durable(**initial: Any) -> Durable:
    """Register module state that the component's snapshot carries; returns it.

        state = durable(count=0, seen=[])
        state["count"] += 1

    The component has one :class:`Durable`: another call adds its names to it (a
    name registered twice is refused). Each snapshot encodes the whole dict as JSON
    (behind the JSON multicodec prefix); a restore resets it to these initial values,
    then sets what the snapshot holds. A value JSON cannot carry faithfully (bytes,
    a tuple, a set, an int dict key, an object) is refused with a :class:`StateError`
    naming where it is, here and at every snapshot; register ``@on_snapshot`` and
    ``@on_restore`` for another encoding.
    """
    handlers = _handlers
    taken = sorted(set(initial) & set(handlers.defaults))
    if taken:
        raise StateError(f"durable state {', '.join(map(repr, taken))} is already registered")
    encoded = {key: _encode_state(value, f"state[{key!r}]") for key, value in initial.items()}
    state = handlers.state
    if state is None:
        state = handlers.state = Durable()
    handlers.defaults.update(encoded)
    for key, value in encoded.items():
        state[key] = _STATE_CODEC.loads(value[len(_STATE_CODEC.prefix) :])  # a copy
    return state


def use_backend(backend: Backend | None) -> Backend | None:
    """Install the backend for messaging calls; returns the previous one."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def swap_handlers(handlers: Handlers) -> Handlers:
    """Install ``handlers`` (for a mock host loading a module); returns the previous."""
    global _handlers
    previous, _handlers = _handlers, handlers
    return previous


def _host() -> Backend:
    if _backend is None:
        raise RuntimeError("no airssys host: run inside a component or under airssys.testing")
    return _backend


def _services() -> Services:
    backend = _host()
    if not hasattr(backend, "kv_open"):
        raise RuntimeError("this airssys host provides no services (storage, HTTP, processes)")
    return cast(Services, backend)


def _payload(value: Any, codec: str | None) -> bytes:
    return encode(value, component_codec(codec or JSON.name))


def send(to: str, value: Any, *, codec: str | None = None) -> None:
    """Send ``value`` (encoded with ``codec``, JSON by default) to the actor at ``to``."""
    _host().send(to, _payload(value, codec))


def publish(topic: str, value: Any, *, codec: str | None = None) -> None:
    """Publish ``value`` to every subscriber of ``topic``."""
    _host().publish(topic, _payload(value, codec))


def request(to: str, value: Any, *, timeout_ms: int = 1000, codec: str | None = None) -> str:
    """Ask ``to`` without blocking; returns the correlation id of the future Callback."""
    return _host().request(to, _payload(value, codec), timeout_ms)


def log(level: str, message: str) -> None:
    """A structured log line on the host, bound to this component's name and address."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    _host().log(level, message)


def self_address() -> str:
    return _host().self_address()


# --- called by the generated component glue (and by airssys.testing) -------------------


def dispatch_message(sender: str, payload: bytes) -> bytes | None:
    """Run the registered handler; returns the encoded reply (None: no reply)."""
    handler = _handlers.message
    if handler is None:
        raise Reject("this component registered no @on_message handler")
    message = Message(sender, payload)
    result = handler(message)
    if result is None:
        return None
    if type(result) is Reply:
        codec, value = component_codec(result.codec), result.value
    else:
        codec, value = message._codec, result
    try:
        return codec.prefix + codec.dumps(value)
    except Exception as exc:
        raise Reject(f"the handler's reply cannot be encoded as {codec.name}: {exc}") from exc


def dispatch_bulk(sender: str, lane: str) -> str | None:
    """:func:`dispatch_message` for the bulk lane (``airssys:component/bulk-text``): the
    payload and the reply travel as strings, ``"a"`` + the bytes when they are all
    ASCII, ``"u"`` + the hex digits of a multicodec prefix + ``":"`` + text when the
    rest is UTF-8 (JSON and text messages), else ``"x"`` + their hex digits."""
    ascii_ = lane[:1] == "a" and lane.isascii()
    payload = lane[1:].encode("ascii") if ascii_ else _from_lane(lane)
    reply = dispatch_message(sender, payload)
    if reply is None:
        return None
    return _to_lane(reply)


_PREFIX_MAX = 16  # bytes of prefix a "u" lane string carries in hex (a varint takes <= 9)


def _to_lane(data: bytes) -> str:
    """``data`` as a bulk-lane string: the ``"a"``, ``"u"`` or ``"x"`` form."""
    if data.isascii():
        return "a" + data.decode("ascii")
    end = 0
    limit = min(len(data), _PREFIX_MAX)
    while end < limit and data[end] & 0x80:
        end += 1
    if end < limit:
        try:
            return "u" + data[: end + 1].hex() + ":" + data[end + 1 :].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "x" + data.hex()


def _from_lane(lane: str) -> bytes:
    tag = lane[:1]
    try:
        if tag == "a":
            return lane[1:].encode("ascii")
        if tag == "x":
            return bytes.fromhex(lane[1:])
        if tag == "u":
            colon = lane.find(":", 1, 2 * _PREFIX_MAX + 2)
            if colon > 0:
                return bytes.fromhex(lane[1:colon]) + lane[colon + 1 :].encode("utf-8")
    except ValueError:
        pass
    raise PayloadError(
        "the bulk lane carries 'a' + ASCII, 'u' + prefix hex digits + ':' + text, or "
        f"'x' + hex digits, got {lane[:16]!r}"
    )


def dispatch_callback(correlation_id: str, reply: bytes | str) -> None:
    """Deliver a request's outcome: reply bytes, or the error text.

    A reply that cannot be decoded is delivered as an error naming why.
    """
    handler = _handlers.callback
    if handler is None:
        return
    if isinstance(reply, str):
        handler(Callback(correlation_id, ok=False, error=reply))
        return
    try:
        codec, body = split(reply)
        value = decode_with(component_codec(codec), body)
    except CodecError as exc:
        handler(Callback(correlation_id, ok=False, error=f"the reply cannot be decoded: {exc}"))
        return
    handler(Callback(correlation_id, ok=True, value=value))


# --- durable state: airssys:component/snapshot -----------------------------------------

_STATE_CODEC: Final = component_codec(JSON)
_STATE_MAX_DEPTH: Final = 400  # what the component's JSON decoder accepts
_JSON_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_STATE_HINT: Final = (
    "the default snapshot carries JSON values (None, bool, int, float, str, list, dict "
    "with str keys); register @on_snapshot and @on_restore for another encoding"
)


def _check_state(value: Any, where: str) -> None:
    """Raise :class:`StateError` unless ``value`` survives a JSON round trip unchanged."""
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    scalars = _JSON_SCALARS
    while pending:
        item, path, depth = pending.pop()
        kind = type(item)
        if kind in scalars:
            continue
        if depth >= _STATE_MAX_DEPTH:
            raise StateError(
                f"durable {path} is nested deeper than {_STATE_MAX_DEPTH} levels "
                "(or contains itself)"
            )
        if kind is list:
            pending.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
        elif kind is dict or kind is Durable:
            for key, v in item.items():
                if type(key) is not str:
                    raise StateError(
                        f"durable {path} has the key {key!r} ({type(key).__name__}), "
                        f"which JSON would turn into a string; {_STATE_HINT}"
                    )
                pending.append((v, f"{path}[{key!r}]", depth + 1))
        else:
            raise StateError(
                f"durable {path} is a {kind.__name__}, which the snapshot cannot "
                f"encode; {_STATE_HINT}"
            )


def _encode_state(value: Any, where: str) -> bytes:
    _check_state(value, where)
    try:
        return _STATE_CODEC.prefix + _STATE_CODEC.dumps(value)
    except Exception as exc:  # e.g. an int past Python's int-to-str digit limit
        raise StateError(f"durable {where} cannot be encoded: {exc}") from None


def _decode_state(data: bytes) -> dict[str, Any]:
    try:
        codec, body = split(data)
        value = decode_with(component_codec(codec), body)
    except CodecError as exc:
        raise StateError(f"the snapshot cannot be decoded: {exc}") from None
    if type(value) is not dict:
        raise StateError(
            f"the snapshot holds a {type(value).__name__}, not durable state "
            "(a map of names to values)"
        )
    for key in value:
        if type(key) is not str:
            raise StateError(f"the snapshot names a durable value {key!r}, not a string")
    try:  # what another codec carried (bytes in MessagePack...) must snapshot again
        _check_state(value, "state")
    except StateError as exc:
        raise StateError(f"the snapshot cannot be restored: {exc}") from None
    return value


def _custom_pair(handlers: Handlers) -> bool:
    """True when the module registered @on_snapshot and @on_restore (both, or raise)."""
    if handlers.snapshot is None and handlers.restore is None:
        return False
    if handlers.snapshot is None or handlers.restore is None:
        have, missing = (
            ("@on_snapshot", "@on_restore")
            if handlers.restore is None
            else ("@on_restore", "@on_snapshot")
        )
        raise StateError(
            f"this component registered {have} without {missing}: register both "
            "(or neither, to snapshot its durable() state)"
        )
    return True


def check_handlers(handlers: Handlers | None = None) -> None:
    """Raise :class:`StateError` if what a module registered cannot work together
    (``@on_snapshot`` without ``@on_restore``). The component glue checks this once the
    module is imported, so such a component fails to build."""
    _custom_pair(_handlers if handlers is None else handlers)


def dispatch_snapshot() -> bytes:
    """The component's state as bytes: ``@on_snapshot``'s, else the :func:`durable`
    state as JSON (multicodec-prefixed), else ``b""`` (nothing registered).

    Raises :class:`StateError` when the state cannot be encoded (inside a component
    that is a trap: ``snapshot`` has no error result)."""
    handlers = _handlers
    if _custom_pair(handlers):
        assert handlers.snapshot is not None
        data = handlers.snapshot()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StateError(f"@on_snapshot must return bytes, not {type(data).__name__}")
        return bytes(data)
    if handlers.state is None:
        return b""
    return _encode_state(handlers.state, "state")


def dispatch_restore(data: bytes) -> None:
    """Put back a state :func:`dispatch_snapshot` returned: through ``@on_restore``,
    else into the :func:`durable` state (reset to its initial values first; ``b""``
    leaves them). Raises :class:`StateError` (a :class:`Reject`: the host gets
    ``err``) for bytes it cannot restore, leaving the state as it was."""
    handlers = _handlers
    if _custom_pair(handlers):
        assert handlers.restore is not None
        handlers.restore(bytes(data))
        return
    state = handlers.state
    if state is None:
        if data:
            raise StateError(
                f"this component registered no durable state (durable() or @on_restore), "
                f"so it cannot restore a snapshot of {len(data)} bytes"
            )
        return
    restored = _decode_state(data) if data else {}
    skip = len(_STATE_CODEC.prefix)
    fresh = {key: _STATE_CODEC.loads(value[skip:]) for key, value in handlers.defaults.items()}
    fresh.update(restored)
    state.clear()
    state.update(fresh)
