"""The MessageBroker: addresses, topics, requests, and the dead-letter record.

Python code and components reach each other the same way: by address (``/sup/echo``)
or by topic (``orders.eu.created``; ``*`` matches one dot-separated segment, ``#``
any number of them). Everything that cannot be delivered lands in
``broker.dead_letters`` with its reason; nothing is dropped silently.

Components call in from worker threads; those calls hop onto the event loop with
``call_soon_threadsafe`` (mailboxes belong to the loop).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from .._logging import Throttle, get_logger, truncate
from ..actors import _mailbox
from ..errors import ActorDeadError, AirssysError, CodecError, InvalidName, MailboxFull
from ..names import check_address, check_sender, check_topic

if TYPE_CHECKING:
    from ..actors._ref import ActorRef
    from ..actors._system import ActorSystem

__all__ = (
    "Callback",
    "DeadLetter",
    "MessageBroker",
    "Remote",
    "reason_kind",
    "topic_matches",
)

_log = get_logger("airssys.broker")
DEAD_LETTERS_KEPT: Final = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be delivered, and why."""

    to: str
    message: Any
    sender: str | None
    reason: str
    at: float


_REASON_KINDS: Final = (
    ("capability denied", "denied"),
    ("no subscribers", "no_subscribers"),
    ("no actor", "no_actor"),
    ("is full", "mailbox_full"),
    ("is stopped", "stopped"),
    ("is gone", "stopped"),
    ("stopped before", "stopped"),
    ("larger than", "too_large"),
    ("too large", "too_large"),
    ("codec", "bad_payload"),
    ("prefix", "bad_payload"),
    ("timed out", "timeout"),
    ("deadline", "timeout"),
)


def reason_kind(reason: str) -> str:
    """A dead letter's reason as one of a few fixed words (a metric label): denied,
    no_subscribers, no_actor, mailbox_full, stopped, too_large, bad_payload, timeout,
    or other."""
    lowered = reason[:300].lower()
    for needle, kind in _REASON_KINDS:
        if needle in lowered:
            return kind
    return "other"


class Remote(Protocol):
    """Where addresses this node does not host are served (airssys.cluster).

    Only bytes cross nodes (payloads keep their multicodec prefix). Called on the
    event loop's thread.
    """

    def hosts(self, address: str) -> bool:
        """Another node serves ``address`` (as far as this node knows now)."""
        ...

    def tell(self, to: str, message: bytes, sender: str | None) -> None:
        """Deliver to the node that serves ``to``; raises an AirssysError when it cannot."""
        ...

    async def ask(self, to: str, message: bytes, timeout: float | None, sender: str | None) -> Any:
        """Request-reply across nodes with the same deadline and errors as locally."""
        ...

    def publish(self, topic: str, message: bytes, sender: str | None) -> None:
        """Deliver to the subscribers on every other node."""
        ...


class Callback:
    """The outcome of a request a component made, on its way back to it."""

    __slots__ = ("correlation_id", "reply")

    def __init__(self, correlation_id: str, reply: bytes | BaseException) -> None:
        self.correlation_id = correlation_id
        self.reply = reply

    def __repr__(self) -> str:
        return f"Callback({self.correlation_id!r}, {self.reply!r})"


def topic_matches(pattern: str, topic: str) -> bool:
    """``*`` matches exactly one segment; ``#`` matches any number (zero or more)."""
    return _match(pattern.split("."), 0, topic.split("."), 0)


def _match(p: list[str], i: int, t: list[str], j: int) -> bool:
    while i < len(p):
        if p[i] == "#":
            return any(_match(p, i + 1, t, k) for k in range(j, len(t) + 1))
        if j >= len(t) or (p[i] != "*" and p[i] != t[j]):
            return False
        i += 1
        j += 1
    return j == len(t)


class MessageBroker:
    """Routes messages for one actor system. Created by the system; use ``system.broker``."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self._subscriptions: dict[str, set[str]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.dead_letters: deque[DeadLetter] = deque(maxlen=DEAD_LETTERS_KEPT)
        self.dead_letter_count = 0
        self.remote: Remote | None = None
        """Set when the system is part of a cluster: addresses on other nodes."""
        self.dead_letter_reasons: dict[str, int] = {}
        """Dead letters so far by kind of reason (see :func:`reason_kind`)."""
        self._dead_letter_listeners: list[Callable[[DeadLetter], None]] = []
        self._dead_letter_lock = threading.Lock()
        # a flood of dead letters becomes a few lines and a summary per window
        self._dead_letter_log = Throttle(_log, "dead letter", burst=10, window=10.0)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()

    # --- dead letters ----------------------------------------------------------------

    def dead_letter(self, to: str, message: Any, sender: str | None, reason: str) -> DeadLetter:
        """Record an undeliverable message (thread-safe)."""
        letter = DeadLetter(to, message, sender, reason, time.time())
        kind = reason_kind(reason)
        with self._dead_letter_lock:
            self.dead_letters.append(letter)
            self.dead_letter_count += 1
            self.dead_letter_reasons[kind] = self.dead_letter_reasons.get(kind, 0) + 1
        self._dead_letter_log(
            reason.split(":", 1)[0][:60], to=truncate(to, 200), sender=sender, reason=reason
        )
        for listener in list(self._dead_letter_listeners):
            try:
                listener(letter)
            except Exception:
                _log.exception("dead-letter listener failed")
        return letter

    def flush_logs(self) -> None:
        """Write the summary of dead letters not logged individually (at close)."""
        self._dead_letter_log.flush()

    def on_dead_letter(self, listener: Callable[[DeadLetter], None]) -> Callable[[], None]:
        """Call ``listener`` for every dead letter; returns a function that unregisters it."""
        self._dead_letter_listeners.append(listener)
        return lambda: self._dead_letter_listeners.remove(listener)

    # --- direct ----------------------------------------------------------------------

    def _target(self, to: str, message: Any, sender: str | None) -> ActorRef:
        if not isinstance(to, str):
            raise InvalidName(f"an address is a string such as '/sup/echo', got {to!r:.80}")
        if sender is not None:
            check_sender(sender)
        ref = self._system.lookup(to)
        if ref is None:
            check_address(to)  # a malformed address is the caller's error, not a dead letter
        if ref is None or not ref.is_alive:
            reason = f"no actor at {to!r}" if ref is None else f"actor {to} is stopped"
            self.dead_letter(to, message, sender, reason)
            raise ActorDeadError(reason)
        check = getattr(ref._cell.actor, "check_message", None)
        if check is not None:
            try:
                check(message)
            except AirssysError as exc:
                self.dead_letter(to, message, sender, str(exc))
                raise
        return ref

    def _remote_for(self, to: object, message: Any) -> Remote | None:
        """The cluster, when ``to`` is not here but another node serves it."""
        remote = self.remote
        if remote is None or not isinstance(to, str) or self._system.lookup(to) is not None:
            return None
        if not remote.hosts(to):
            return None
        if type(message) is not bytes:
            raise CodecError(
                f"only bytes cross nodes ({to} is on another node): encode the message "
                f"(airssys.codec.encode), not {type(message).__name__}"
            )
        return remote

    def send(self, to: str, message: Any, *, sender: str | None = None) -> None:
        """Deliver now, without waiting. Raises (and records a dead letter) when it cannot."""
        remote = self._remote_for(to, message)
        if remote is not None:
            if sender is not None:
                check_sender(sender)
            try:
                remote.tell(to, message, sender)
            except AirssysError as exc:
                self.dead_letter(to, message, sender, str(exc))
                raise
            return
        ref = self._target(to, message, sender)
        try:
            queued = ref.tell_nowait(message, sender=sender)
        except (ActorDeadError, MailboxFull) as exc:
            self.dead_letter(to, message, sender, str(exc))
            raise
        if not queued:
            self.dead_letter(to, message, sender, f"mailbox of {to} is full; dropped")

    async def ask(
        self, to: str, message: Any, *, timeout: float | None = 5.0, sender: str | None = None
    ) -> Any:
        """Request-reply by address, with a deadline."""
        remote = self._remote_for(to, message)
        if remote is not None:
            if sender is not None:
                check_sender(sender)
            try:
                return await remote.ask(to, message, timeout, sender)
            except (ActorDeadError, MailboxFull) as exc:
                self.dead_letter(to, message, sender, str(exc))
                raise
        ref = self._target(to, message, sender)  # checks the address and the sender
        try:
            return await ref._ask(message, timeout, sender)
        except (ActorDeadError, MailboxFull) as exc:
            self.dead_letter(to, message, sender, str(exc))
            raise

    # --- topics ------------------------------------------------------------------------

    def subscribe(self, pattern: str, subscriber: ActorRef | str) -> None:
        """Subscribe an actor to a topic pattern. A component must hold a ``subscribe``
        grant covering ``pattern`` (``CapabilityDenied`` otherwise, audited)."""
        address = subscriber if isinstance(subscriber, str) else subscriber.address
        check_topic(pattern, "topic pattern")
        ref = self._system.lookup(address)
        checks = getattr(ref._cell.actor, "checks", None) if ref is not None else None
        if checks is not None:
            checks.check_subscribe(pattern)
        self._subscriptions.setdefault(pattern, set()).add(address)

    def unsubscribe(self, pattern: str, subscriber: ActorRef | str) -> None:
        address = subscriber if isinstance(subscriber, str) else subscriber.address
        subscribers = self._subscriptions.get(pattern)
        if subscribers is not None:
            subscribers.discard(address)
            if not subscribers:
                del self._subscriptions[pattern]

    def subscribers(self, topic: str) -> list[str]:
        found: set[str] = set()
        for pattern, addresses in list(self._subscriptions.items()):
            if topic_matches(pattern, topic):
                found |= addresses
        return sorted(found)

    def publish(self, topic: str, message: Any, *, sender: str | None = None) -> int:
        """Deliver to every subscriber of ``topic``; returns how many took it (here:
        in a cluster, the subscribers on other nodes get it too, uncounted)."""
        check_topic(topic)
        check_sender(sender)
        remote = self.remote
        if remote is not None and type(message) is bytes:
            remote.publish(topic, message, sender)
            return self.publish_here(topic, message, sender=sender, dead_letter=False)
        return self.publish_here(topic, message, sender=sender)

    def publish_here(
        self, topic: str, message: Any, *, sender: str | None = None, dead_letter: bool = True
    ) -> int:
        """Deliver to this node's subscribers of ``topic`` only (what arrives from
        other nodes); ``dead_letter``: record one when nobody here subscribes."""
        delivered = 0
        targets = self.subscribers(topic)
        if not targets:
            if not dead_letter:
                return 0
            self.dead_letter(f"topic:{topic}", message, sender, f"no subscribers for {topic!r}")
            return 0
        for address in targets:
            ref = self._system.lookup(address)
            if ref is None or not ref.is_alive:
                self.dead_letter(address, message, sender, f"subscriber {address} is gone")
                for addresses in self._subscriptions.values():
                    addresses.discard(address)
                continue
            try:
                if ref.tell_nowait(message, sender=sender):
                    delivered += 1
                else:
                    self.dead_letter(address, message, sender, f"mailbox of {address} is full")
            except AirssysError as exc:
                self.dead_letter(address, message, sender, str(exc))
        return delivered

    # --- entry points for component host calls (any thread) --------------------------------

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread or self._loop is None:
            fn(*args)
        elif _mailbox.capture_trace is not None:  # the calling span goes along
            self._loop.call_soon_threadsafe(fn, *args, context=contextvars.copy_context())
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _reserve(self, to: str, message: Any, sender: str) -> ActorRef:
        """Check a component's message and promise it a slot at ``to``, on the caller's
        thread, so a refusal reaches the guest at the call as ``err(reason)``."""
        ref = self._system.lookup(to)
        if ref is None or not ref.is_alive:
            reason = f"no actor at {to!r}" if ref is None else f"actor {to} is stopped"
            self.dead_letter(to, message, sender, reason)
            raise ActorDeadError(reason)
        check = getattr(ref._cell.actor, "check_message", None)
        try:
            if check is not None:
                check(message)
            ref._reserve()
        except AirssysError as exc:
            self.dead_letter(to, message, sender, str(exc))
            raise
        return ref

    def _deliver_reserved(self, ref: ActorRef, message: Any, sender: str) -> None:
        try:
            ref._put_reserved(message, sender)
        except ActorDeadError as exc:  # it stopped between the promise and the delivery
            self.dead_letter(ref.address, message, sender, str(exc))

    def _remote_from(self, to: str) -> Remote | None:
        """For a component's call (any thread): the cluster, when another node has ``to``."""
        remote = self.remote
        if remote is None or self._system.lookup(to) is not None or not remote.hosts(to):
            return None
        return remote

    def _tell_remote(self, remote: Remote, sender: str, to: str, payload: bytes) -> None:
        try:
            remote.tell(to, payload, sender)
        except AirssysError as exc:
            self.dead_letter(to, payload, sender, str(exc))

    def send_from(self, sender: str, to: str, payload: bytes) -> None:
        """A component's ``messaging.send``: refused at the call when ``to`` is unknown,
        stopped, or full (counted as dropped), or the payload does not suit it. To
        another node: handed over at once (a failure there is a dead letter)."""
        remote = self._remote_from(to)
        if remote is not None:
            self._on_loop(self._tell_remote, remote, sender, to, bytes(payload))
            return
        ref = self._reserve(to, payload, sender)
        self._on_loop(self._deliver_reserved, ref, payload, sender)

    def publish_from(self, sender: str, topic: str, payload: bytes) -> None:
        """A component's ``messaging.publish``: every subscriber with room gets it; the
        call fails (after delivering to the others) naming those that refused it."""
        check_topic(topic)
        remote = self.remote
        if remote is not None:
            self._on_loop(remote.publish, topic, bytes(payload), sender)
        targets = self.subscribers(topic)
        if not targets:
            if remote is None:
                self.dead_letter(f"topic:{topic}", payload, sender, f"no subscribers for {topic!r}")
            return
        refused: list[str] = []
        for address in targets:
            try:
                ref = self._reserve(address, payload, sender)
            except AirssysError as exc:
                refused.append(f"{address} ({exc})")
                continue
            self._on_loop(self._deliver_reserved, ref, payload, sender)
        if refused:
            raise MailboxFull(
                f"{len(refused)} of {len(targets)} subscribers of {topic!r} refused the "
                f"message: {truncate('; '.join(refused), 400)}"
            )

    def request_from(self, requester: str, to: str, payload: bytes, timeout_ms: int) -> str:
        """A component's ``messaging.request``: returns the correlation id at once; the
        reply (or the failure) arrives through the requester's ``handle-callback``."""
        if timeout_ms <= 0:
            raise ValueError(f"timeout-ms must be positive, got {timeout_ms}")
        remote = self._remote_from(to)
        if remote is not None:
            correlation_id = f"{requester}#{next(self._ids)}"
            self._on_loop(
                self._start_remote_request,
                requester,
                remote,
                to,
                bytes(payload),
                timeout_ms,
                correlation_id,
            )
            return correlation_id
        ref = self._reserve(to, payload, requester)
        correlation_id = f"{requester}#{next(self._ids)}"
        self._on_loop(self._start_request, requester, ref, payload, timeout_ms, correlation_id)
        return correlation_id

    def _start_request(
        self, requester: str, ref: ActorRef, payload: bytes, timeout_ms: int, correlation_id: str
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._request(requester, ref, payload, timeout_ms / 1000.0, correlation_id),
            name=f"airssys-request:{correlation_id}",
        )
        self._system._track(task)

    def _start_remote_request(
        self,
        requester: str,
        remote: Remote,
        to: str,
        payload: bytes,
        timeout_ms: int,
        correlation_id: str,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._request(
                requester, to, payload, timeout_ms / 1000.0, correlation_id, remote=remote
            ),
            name=f"airssys-request:{correlation_id}",
        )
        self._system._track(task)

    async def _request(
        self,
        requester: str,
        ref: ActorRef | str,
        payload: bytes,
        timeout: float,
        correlation_id: str,
        remote: Remote | None = None,
    ) -> None:
        to = ref if isinstance(ref, str) else ref.address
        try:
            if remote is not None:
                reply: bytes | BaseException = await remote.ask(to, payload, timeout, requester)
            else:
                assert not isinstance(ref, str)
                reply = await ref._ask_reserved(payload, timeout=timeout, sender=requester)
            if reply is None:
                reply = ActorDeadError(f"{to} answered the request with nothing")
        except Exception as exc:
            reply = exc
        callback = Callback(correlation_id, reply)
        target = self._system.lookup(requester)
        if target is None or not target.is_alive:
            self.dead_letter(requester, callback, to, f"requester {requester} is gone")
            return
        try:  # a reply waits for room rather than being dropped
            await target.tell(callback, sender=to)
        except AirssysError as exc:
            self.dead_letter(requester, callback, to, str(exc))
