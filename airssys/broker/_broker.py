"""The MessageBroker: addresses, topics, requests, and the dead-letter record.

Python code and components reach each other the same way: by address (``/sup/echo``)
or by topic (``orders.eu.created``; ``*`` matches one dot-separated segment, ``#``
any number of them). Everything that cannot be delivered lands in
``broker.dead_letters`` with its reason; nothing is dropped silently.

Components call in from worker threads; those calls hop onto the event loop with
``call_soon_threadsafe`` (mailboxes belong to the loop).

The broker sits below the actors: it knows them only as :class:`Endpoint` values in
a :data:`Directory` (the system's address -> cell mapping), and delivers into their
mailboxes itself, so a message never walks back up into the actors on its way in.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from .. import messages
from .._logging import Throttle, get_logger, truncate
from ..codec import CODECS, codec_of
from ..errors import (
    ActorDeadError,
    AirssysError,
    CapabilityDenied,
    CodecError,
    InvalidName,
    MailboxFull,
)
from ..messages import DEFAULT_ASK_TIMEOUT, HEALTH, Callback, Envelope, check_timeout
from ..names import check_address, check_sender, check_topic
from ._deadlines import Deadlines
from ._mailbox import Mailbox

if TYPE_CHECKING:
    from ..security import CompiledGrants

__all__ = (
    "Callback",
    "ComponentPort",
    "DeadLetter",
    "Directory",
    "Endpoint",
    "MessageBroker",
    "PayloadGate",
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


class Endpoint(Protocol):
    """Where the broker delivers: an address and its mailbox (an actor's cell).

    Plain attributes, read by the broker on the way in: no call back into the actor.
    """

    address: str
    mailbox: Mailbox
    gate: PayloadGate | None
    """Refuses, before it is queued, a message the actor could never take."""
    grants: CompiledGrants | None
    """A component's grants: its topic subscriptions are checked against them."""


class Addressed(Protocol):
    """Anything with an address (an ActorRef)."""

    @property
    def address(self) -> str: ...


Directory = Mapping[str, Endpoint]
"""The endpoints by address (the actor system's registry, read as it is)."""

_PREFIXES: Final = frozenset(c.prefix for c in CODECS.values())


def not_bytes(message: Any) -> str:
    return (
        f"a component takes bytes with a multicodec prefix, not {type(message).__name__}; "
        "encode it first (airssys.codec.encode(value, 'json'))"
    )


class PayloadGate:
    """A component's check of a message before it is queued: bytes with a known
    multicodec prefix, within its payload cap (``oversize(n)`` raises past
    ``ceiling``; the owner keeps ``ceiling`` at what its instance takes)."""

    __slots__ = ("ceiling", "oversize")

    def __init__(self, oversize: Callable[[int], None]) -> None:
        self.ceiling = 0
        self.oversize = oversize

    def __call__(self, message: Any) -> None:
        if type(message) is not bytes:
            if isinstance(message, Callback) or message is HEALTH:
                return
            raise CodecError(not_bytes(message))
        if message[:1] not in _PREFIXES and message[:2] not in _PREFIXES:
            codec_of(message)  # raises, naming the prefix and the known codecs
        if len(message) > self.ceiling:
            self.oversize(len(message))


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

    def __init__(self, directory: Directory, tasks: set[asyncio.Task[None]]) -> None:
        self._directory = directory
        self._tasks = tasks
        """Where the requests in flight are kept (the system's tasks: it ends them)."""
        self._deadline_queue: Deadlines | None = None
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

    def _deadlines(self) -> Deadlines:
        if self._deadline_queue is None:
            self._deadline_queue = Deadlines(asyncio.get_running_loop())
        return self._deadline_queue

    def close(self) -> None:
        """Disarm the ask deadlines (the system is closing)."""
        if self._deadline_queue is not None:
            self._deadline_queue.close()

    @property
    def pending_asks(self) -> int:
        """Asks waiting for a reply (or for their deadline)."""
        return len(self._deadline_queue) if self._deadline_queue is not None else 0

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

    def _target(self, to: str, message: Any, sender: str | None) -> Endpoint:
        if not isinstance(to, str):
            raise InvalidName(f"an address is a string such as '/sup/echo', got {to!r:.80}")
        if sender is not None:
            check_sender(sender)
        endpoint = self._directory.get(to)
        if endpoint is None:
            check_address(to)  # a malformed address is the caller's error, not a dead letter
        self._admit(to, endpoint, message, sender)
        assert endpoint is not None
        return endpoint

    def _admit(self, to: str, endpoint: Endpoint | None, message: Any, sender: str | None) -> None:
        """Refuse (and record as a dead letter) a message ``endpoint`` cannot take."""
        if endpoint is None or endpoint.mailbox.closed:
            reason = f"no actor at {to!r}" if endpoint is None else f"actor {to} is stopped"
            self.dead_letter(to, message, sender, reason)
            raise ActorDeadError(reason)
        gate = endpoint.gate
        if gate is not None:
            try:
                gate(message)
            except AirssysError as exc:
                self.dead_letter(to, message, sender, str(exc))
                raise

    def _remote_for(self, to: object, message: Any) -> Remote | None:
        """The cluster, when ``to`` is not here but another node serves it."""
        remote = self.remote
        if remote is None or not isinstance(to, str) or to in self._directory:
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
        self._tell_nowait(self._target(to, message, sender), message, sender)

    def _tell_nowait(self, endpoint: Endpoint, message: Any, sender: str | None) -> bool:
        try:
            queued = endpoint.mailbox.put_nowait(Envelope(message, sender))
        except (ActorDeadError, MailboxFull) as exc:
            self.dead_letter(endpoint.address, message, sender, str(exc))
            raise
        if not queued:
            self._dropped(endpoint, message, sender)
        return queued

    def _dropped(self, endpoint: Endpoint, message: Any, sender: str | None) -> None:
        to = endpoint.address
        self.dead_letter(to, message, sender, f"mailbox of {to} is full; dropped")

    def tell_nowait(self, endpoint: Endpoint, message: Any, sender: str | None = None) -> bool:
        """Queue ``message`` at ``endpoint`` now (an ActorRef's ``tell_nowait``): the
        same checks and dead letters as :meth:`send`; False when dropped."""
        if sender is not None:
            check_sender(sender)
        self._admit(endpoint.address, endpoint, message, sender)
        return self._tell_nowait(endpoint, message, sender)

    async def tell(self, endpoint: Endpoint, message: Any, sender: str | None = None) -> None:
        """Queue ``message`` at ``endpoint``, waiting for room under the ``wait``
        strategy (an ActorRef's ``tell``)."""
        if sender is not None:
            check_sender(sender)
        self._admit(endpoint.address, endpoint, message, sender)
        mailbox = endpoint.mailbox
        if len(mailbox) + mailbox.reserved < mailbox.capacity:  # room: no waiting
            self._tell_nowait(endpoint, message, sender)
            return
        try:
            queued = await mailbox.put(Envelope(message, sender))
        except (ActorDeadError, MailboxFull) as exc:
            self.dead_letter(endpoint.address, message, sender, str(exc))
            raise
        if not queued:
            self._dropped(endpoint, message, sender)

    async def ask_endpoint(
        self,
        endpoint: Endpoint,
        message: Any,
        timeout: float | None = DEFAULT_ASK_TIMEOUT,
        sender: str | None = None,
    ) -> Any:
        """Request-reply with ``endpoint`` (an ActorRef's ``ask``): the same checks,
        deadline and dead letters as :meth:`ask`."""
        if sender is not None:
            check_sender(sender)
        self._admit(endpoint.address, endpoint, message, sender)
        return await self._ask(endpoint, message, timeout, sender)

    async def _ask(
        self, endpoint: Endpoint, message: Any, timeout: float | None, sender: str | None
    ) -> Any:
        check_timeout(timeout)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        mailbox = endpoint.mailbox
        try:
            if len(mailbox) + mailbox.reserved < mailbox.capacity:  # room: no waiting
                mailbox.put_nowait(Envelope(message, sender, reply))
            else:
                await mailbox.put(Envelope(message, sender, reply))
            return await self._reply(reply, timeout, endpoint.address)
        except (ActorDeadError, MailboxFull) as exc:
            self.dead_letter(endpoint.address, message, sender, str(exc))
            raise

    async def _reply(self, reply: asyncio.Future[Any], timeout: float | None, address: str) -> Any:
        if timeout is None:
            return await reply
        deadlines = self._deadline_queue
        if deadlines is None:  # (not `or`: an empty queue is falsy, and len() sums)
            deadlines = self._deadlines()
        deadlines.add(reply, timeout, address)
        try:
            return await reply
        finally:  # answered, failed or cancelled: the deadline has nothing left to guard
            deadlines.discard(reply, timeout)

    async def ask(
        self,
        to: str,
        message: Any,
        *,
        timeout: float | None = DEFAULT_ASK_TIMEOUT,
        sender: str | None = None,
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
        endpoint = self._target(to, message, sender)  # checks the address and the sender
        return await self._ask(endpoint, message, timeout, sender)

    # --- topics ------------------------------------------------------------------------

    def subscribe(self, pattern: str, subscriber: Addressed | str) -> None:
        """Subscribe an actor (its ref or address) to a topic pattern. A component must
        hold a ``subscribe`` grant covering ``pattern`` (``CapabilityDenied`` otherwise,
        audited)."""
        address = subscriber if isinstance(subscriber, str) else subscriber.address
        check_topic(pattern, "topic pattern")
        endpoint = self._directory.get(address)
        grants = endpoint.grants if endpoint is not None else None
        if grants is not None:
            grants.check_subscribe(pattern)
        self._subscriptions.setdefault(pattern, set()).add(address)

    def unsubscribe(self, pattern: str, subscriber: Addressed | str) -> None:
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
            endpoint = self._directory.get(address)
            if endpoint is None or endpoint.mailbox.closed:
                self.dead_letter(address, message, sender, f"subscriber {address} is gone")
                for addresses in self._subscriptions.values():
                    addresses.discard(address)
                continue
            try:
                if endpoint.mailbox.put_nowait(Envelope(message, sender)):
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
        elif messages.capture_trace is not None:  # the calling span goes along
            self._loop.call_soon_threadsafe(fn, *args, context=contextvars.copy_context())
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _reserve(self, to: str, message: Any, sender: str) -> tuple[Endpoint, Envelope]:
        """Check a component's message and promise it a slot at ``to``, on the caller's
        thread, so a refusal reaches the guest at the call as ``err(reason)``; a durable
        target journals it here, before the guest is told it was sent."""
        endpoint = self._directory.get(to)
        self._admit(to, endpoint, message, sender)
        assert endpoint is not None
        envelope = Envelope(message, sender)
        try:
            endpoint.mailbox.reserve(envelope)
        except AirssysError as exc:
            self.dead_letter(to, message, sender, str(exc))
            raise
        return endpoint, envelope

    def _deliver_reserved(self, endpoint: Endpoint, envelope: Envelope) -> None:
        try:
            endpoint.mailbox.put_reserved(envelope)
        except ActorDeadError as exc:  # it stopped between the promise and the delivery
            self.dead_letter(endpoint.address, envelope.message, envelope.sender, str(exc))

    def _remote_from(self, to: str) -> Remote | None:
        """For a component's call (any thread): the cluster, when another node has ``to``."""
        remote = self.remote
        if remote is None or to in self._directory or not remote.hosts(to):
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
        endpoint, envelope = self._reserve(to, payload, sender)
        self._on_loop(self._deliver_reserved, endpoint, envelope)

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
                endpoint, envelope = self._reserve(address, payload, sender)
            except AirssysError as exc:
                refused.append(f"{address} ({exc})")
                continue
            self._on_loop(self._deliver_reserved, endpoint, envelope)
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
        endpoint, envelope = self._reserve(to, payload, requester)
        correlation_id = f"{requester}#{next(self._ids)}"
        self._on_loop(
            self._start_request, requester, endpoint, envelope, timeout_ms, correlation_id
        )
        return correlation_id

    def _start_request(
        self,
        requester: str,
        endpoint: Endpoint,
        envelope: Envelope,
        timeout_ms: int,
        correlation_id: str,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._request(requester, endpoint, envelope, timeout_ms / 1000.0, correlation_id),
            name=f"airssys-request:{correlation_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(
        self,
        requester: str,
        ref: Endpoint | str,
        request: Envelope | bytes,
        timeout: float,
        correlation_id: str,
        remote: Remote | None = None,
    ) -> None:
        """``request``: the payload for another node, else the envelope reserved (and
        journaled, for a durable target) at the call."""
        to = ref if isinstance(ref, str) else ref.address
        try:
            if remote is not None:
                assert isinstance(request, bytes)
                reply: bytes | BaseException = await remote.ask(to, request, timeout, requester)
            else:
                assert not isinstance(ref, str) and isinstance(request, Envelope)
                answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                request.reply = answer
                ref.mailbox.put_reserved(request)
                reply = await self._reply(answer, timeout, to)
            if reply is None:
                reply = ActorDeadError(f"{to} answered the request with nothing")
        except Exception as exc:
            reply = exc
        callback = Callback(correlation_id, reply)
        target = self._directory.get(requester)
        if target is None or target.mailbox.closed:
            self.dead_letter(requester, callback, to, f"requester {requester} is gone")
            return
        try:  # a reply waits for room rather than being dropped
            await target.mailbox.put(Envelope(callback, to))
        except AirssysError as exc:
            self.dead_letter(requester, callback, to, str(exc))


class ComponentPort:
    """A component instance's messaging imports (its Host's send, publish, request),
    straight into the broker from whatever thread runs the component.

    Every call passes the component's compiled grants first (one check, no pattern
    parsing); a denial is audited (by the checks' hook), recorded as a dead letter,
    and reaches the guest as ``err("capability denied: ...")``.
    """

    __slots__ = ("_address", "_broker", "_checks", "host_calls", "services")

    def __init__(
        self,
        broker: MessageBroker,
        address: str,
        checks: CompiledGrants,
        services: Any,
        host_calls: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self._broker = broker
        self._address = address
        self._checks = checks
        self.services = services
        """Storage, HTTP and processes, behind the same grants (made on first use)."""
        self.host_calls = host_calls
        """(interface, outcome) -> count, kept by the actor's stats (the runtime adds)."""

    def self_address(self) -> str:
        return self._address

    def _allowed(self, check: Callable[[str], None], to: str, where: str, payload: bytes) -> None:
        """``check(to)``; a denial is recorded as a dead letter to ``where`` and re-raised."""
        try:
            check(to)
        except CapabilityDenied as exc:
            self._broker.dead_letter(where, bytes(payload), self._address, str(exc))
            raise

    def send(self, to: str, payload: bytes) -> None:
        self._allowed(self._checks.check_send, to, to, payload)
        self._broker.send_from(self._address, to, bytes(payload))

    def publish(self, topic: str, payload: bytes) -> None:
        self._allowed(self._checks.check_publish, topic, f"topic:{topic}", payload)
        self._broker.publish_from(self._address, topic, bytes(payload))

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._allowed(self._checks.check_request, to, to, payload)
        return str(self._broker.request_from(self._address, to, bytes(payload), timeout_ms))
