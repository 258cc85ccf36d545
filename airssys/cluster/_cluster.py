"""The cluster: one ActorSystem per node, the same addresses on every node, over NATS.

``async with join_cluster(system, "nats://127.0.0.1:4222", node="a") as cluster:``
connects, serves this node's addresses to the others, keeps the cluster view from
the other nodes' heartbeats and sets ``system.broker.remote`` so that sends, asks,
publishes and component requests to addresses on other nodes go through NATS.
Leaving the block says goodbye, unsets the remote, and drains and closes the
connection: nothing is left running. The subjects are described in docs/cluster.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import errors as _errors
from .._logging import get_logger, truncate
from ..errors import ActorDeadError, AirssysError, AskTimeout, PayloadTooLarge
from ..errors import ClusterError as ClusterError
from ._subjects import (
    LONG_TOPIC,
    NODE_PREFIX,
    TOPIC_PREFIX,
    address_subject,
    header_text,
    header_value,
    node_subject,
    topic_of_subject,
    topic_subject,
)

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from ..actors import ActorSystem

__all__ = ("Cluster", "ClusterError", "NodeInfo", "join_cluster")

_log = get_logger("airssys.cluster")

HEARTBEAT: Final = 0.5
"""Seconds between a node's heartbeats."""
MISSED: Final = 3
"""Heartbeats missed before the others drop a node from their view."""
POLL: Final = 0.2
"""Seconds between two looks at the system's addresses (new ones get served)."""
CONNECT_TIMEOUT: Final = 2.0
BARRIER_TIMEOUT: Final = 5.0
"""Seconds :meth:`Cluster.barrier` waits for the server to confirm a node's commands."""
H_SENDER: Final = "airssys-sender"
H_FROM: Final = "airssys-from"
H_ERROR: Final = "airssys-error"
H_TIMEOUT: Final = "airssys-timeout"
H_NONE: Final = "airssys-none"
H_TOPIC: Final = "airssys-topic"
_STATUS: Final = "Status"
_BUILTIN_ERRORS: Final[dict[str, type[Exception]]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "TimeoutError": TimeoutError,
    "PermissionError": PermissionError,
    "RuntimeError": RuntimeError,
}


@dataclass(slots=True)
class NodeInfo:
    """Another node as its last heartbeat described it."""

    name: str
    pid: int
    host: str
    started: float
    addresses: frozenset[str]
    meta: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0
    """time.monotonic() of the last heartbeat."""

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "node": self.name,
            "pid": self.pid,
            "host": self.host,
            "started": self.started,
            "addresses": sorted(self.addresses),
            "meta": self.meta,
            "seen_ago": round(max(0.0, now - self.last_seen), 3),
        }


@dataclass(slots=True)
class _Pending:
    """An ask in flight to another node."""

    future: asyncio.Future[Any]
    address: str
    hosts: frozenset[str]
    timeout: float | None
    lost: str | None = None
    """A node that served the address and went away while the ask waited."""
    timer: asyncio.TimerHandle | None = None


def _error(kind: str, message: str) -> Exception:
    """The typed error a remote node answered with (AirssysError when unknown)."""
    cls = getattr(_errors, kind, None) if kind in _errors.__all__ else None
    if isinstance(cls, type) and issubclass(cls, AirssysError):
        try:
            return cls(message)
        except TypeError:
            pass
    builtin = _BUILTIN_ERRORS.get(kind)
    if builtin is not None:
        return builtin(message)
    return AirssysError(f"{kind}: {message}")


class Cluster:
    """This node's part of the cluster; the ``Remote`` of ``system.broker``.

    Made by :func:`join_cluster`. ``nodes()`` and ``where(address)`` show the view;
    ``on_node_down``/``on_node_up`` register listeners (the node's failover).
    """

    def __init__(
        self,
        system: ActorSystem,
        nc: Client,
        node: str,
        url: str,
        *,
        heartbeat: float = HEARTBEAT,
        missed: int = MISSED,
        poll: float = POLL,
    ) -> None:
        self.system = system
        self.nc = nc
        self.node = node
        self.url = url
        self.heartbeat = heartbeat
        self.dead_after = heartbeat * missed
        self.poll = poll
        self.started = time.time()
        self.meta: dict[str, Any] = {}
        """Extra values carried in this node's heartbeat (the node's placement)."""
        self._peers: dict[str, NodeInfo] = {}
        self._where: dict[str, set[str]] = {}
        self._served: dict[str, Subscription] = {}
        self._subs: list[Subscription] = []
        self._pending: dict[str, _Pending] = {}
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._inbox = ""
        self._outbox: deque[tuple[str, bytes, dict[str, str]]] = deque()
        self._outbox_ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._down: list[Callable[[NodeInfo], None]] = []
        self._up: list[Callable[[NodeInfo], None]] = []
        self._connected_since = time.monotonic()
        self._closing = False
        self._seq = 0
        self._sync_lock = asyncio.Lock()
        self.served_count: dict[str, int] = {}
        """Remote messages handled here, by address (tells and asks)."""

    # --- the view ------------------------------------------------------------------------

    def hosts(self, address: str) -> bool:
        return bool(self._where.get(address))

    def where(self, address: str) -> list[str]:
        """The nodes that serve ``address`` (this one included), sorted."""
        found = set(self._where.get(address, ()))
        if address in self._served:
            found.add(self.node)
        return sorted(found)

    def nodes(self) -> list[NodeInfo]:
        """The other nodes in the view, by name."""
        return [self._peers[name] for name in sorted(self._peers)]

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    def on_node_down(self, listener: Callable[[NodeInfo], None]) -> Callable[[], None]:
        """Call ``listener(info)`` when a node leaves the view (no heartbeat for
        ``missed`` intervals, or a goodbye)."""
        self._down.append(listener)
        return lambda: self._down.remove(listener)

    def on_node_up(self, listener: Callable[[NodeInfo], None]) -> Callable[[], None]:
        self._up.append(listener)
        return lambda: self._up.remove(listener)

    def view(self) -> dict[str, Any]:
        """The view as JSON values: this node, the others, and where each address lives."""
        now = time.monotonic()
        me = {**self._describe(), "seen_ago": 0.0, "self": True}
        addresses: dict[str, list[str]] = {}
        for address in set(self._where) | set(self._served):
            addresses[address] = self.where(address)
        return {
            "node": self.node,
            "url": self.url,
            "connected": self.connected,
            "nodes": [me, *({**p.as_dict(now), "self": False} for p in self.nodes())],
            "addresses": dict(sorted(addresses.items())),
            "served": dict(sorted(self.served_count.items())),
        }

    # --- starting and stopping --------------------------------------------------------------

    async def start(self) -> None:
        nc = self.nc
        self._inbox = nc.new_inbox()
        self._subs.append(await nc.subscribe(f"{self._inbox}.*", cb=self._on_reply))
        self._subs.append(await nc.subscribe(f"{NODE_PREFIX}.*", cb=self._on_heartbeat))
        self._subs.append(await nc.subscribe(f"{TOPIC_PREFIX}.>", cb=self._on_topic))
        await self._sync_addresses()
        await self.barrier()
        await self._beat()
        self._loops = [
            asyncio.get_running_loop().create_task(self._heartbeats(), name="airssys-heartbeat"),
            asyncio.get_running_loop().create_task(self._publisher(), name="airssys-publisher"),
        ]

    async def close(self) -> None:
        """Say goodbye, stop serving, fail the asks in flight, drain the connection."""
        if self._closing:
            return
        self._closing = True
        if self.system.broker.remote is self:
            self.system.broker.remote = None
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._flush_outbox()
            await self._beat(leaving=True)
        for pending in list(self._pending.values()):
            self._fail(pending, ClusterError(f"node {self.node!r} left the cluster"))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.dead_after)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.drain(), timeout=5.0)
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def barrier(self, timeout: float = BARRIER_TIMEOUT) -> None:
        """Return once the NATS server has processed every command this node sent
        before (subscriptions, unsubscriptions, publishes); a :class:`ClusterError`
        after ``timeout`` seconds.

        ``nats.Client.flush()`` is not such a barrier: it writes its PING straight to
        the socket, ahead of the commands still queued for its flusher task, so its
        PONG can come back before the server has seen them. A message to this node's
        own inbox travels behind them instead.
        """
        token = f"b{next(self._ids)}"
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers[token] = arrived
        try:
            await self.nc.publish(f"{self._inbox}.{token}", b"")
            await asyncio.wait_for(arrived, timeout)
        except TimeoutError as exc:
            raise ClusterError(
                f"the NATS server did not confirm node {self.node!r}'s commands "
                f"within {timeout:g} s"
            ) from exc
        finally:
            self._barriers.pop(token, None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- heartbeats and the view ---------------------------------------------------------------

    def _describe(self) -> dict[str, Any]:
        """This node as its heartbeat and its view describe it."""
        return {
            "node": self.node,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": self.started,
            "addresses": sorted(self._served),
            "meta": self.meta,
        }

    async def _beat(self, *, leaving: bool = False) -> None:
        self._seq += 1
        body = {
            **self._describe(),
            "seq": self._seq,
            "interval": self.heartbeat,
            "leaving": leaving,
        }
        await self.nc.publish(node_subject(self.node), json.dumps(body).encode())

    async def _heartbeats(self) -> None:
        next_poll = next_beat = 0.0
        while True:
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.poll
                try:
                    if await self._sync_addresses():
                        await self._beat()  # the others learn at once
                        next_beat = now + self.heartbeat
                except Exception:
                    _log.exception("cluster: serving the addresses failed")
                self._expire(now)
            if now >= next_beat:
                next_beat = now + self.heartbeat
                with contextlib.suppress(Exception):  # disconnected: buffered or refused
                    await self._beat()
            await asyncio.sleep(min(next_poll, next_beat) - time.monotonic())

    def _expire(self, now: float) -> None:
        """Drop the nodes whose heartbeats stopped; not while this node is itself cut
        off (then it cannot tell a dead node from its own partition)."""
        if not self.nc.is_connected or now - self._connected_since < self.dead_after:
            return
        for info in list(self._peers.values()):
            if now - info.last_seen > self.dead_after:
                self._drop(info, f"no heartbeat for {now - info.last_seen:.1f} s")

    def _unplace(self, node: str, addresses: Iterable[str]) -> None:
        """``node`` no longer serves ``addresses``."""
        for address in addresses:
            nodes = self._where.get(address)
            if nodes is not None:
                nodes.discard(node)
                if not nodes:
                    del self._where[address]

    def _drop(self, info: NodeInfo, why: str) -> None:
        if self._peers.get(info.name) is not info:
            return
        del self._peers[info.name]
        self._unplace(info.name, info.addresses)
        (_log.info if why == "it left" else _log.warning)(
            "cluster: node left the view", node=info.name, why=why
        )
        for pending in list(self._pending.values()):
            if info.name not in pending.hosts:
                continue
            pending.lost = info.name
            if not self._where.get(pending.address) or pending.timeout is None:
                self._fail(
                    pending,
                    ActorDeadError(
                        f"{pending.address}: node {info.name!r} serving it left the cluster "
                        f"({why}) while the ask was in flight"
                    ),
                )
        for listener in list(self._down):
            try:
                listener(info)
            except Exception:
                _log.exception("cluster: node-down listener failed")

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
            name = str(body["node"])
            addresses = frozenset(str(a) for a in body.get("addresses", ()))
        except (ValueError, KeyError, TypeError):
            _log.warning("cluster: a malformed heartbeat", subject=msg.subject)
            return
        if name == self.node:
            if body.get("pid") != os.getpid() or body.get("started") != self.started:
                _log.warning("cluster: another node uses this node's name", node=name)
            return
        info = self._peers.get(name)
        if body.get("leaving"):
            if info is not None:
                self._drop(info, "it left")
            return
        fresh = info is None or info.started != body.get("started")
        if info is None:
            info = NodeInfo(
                name=name,
                pid=int(body.get("pid", 0)),
                host=str(body.get("host", "")),
                started=float(body.get("started", 0.0)),
                addresses=frozenset(),
            )
            self._peers[name] = info
        info.pid = int(body.get("pid", info.pid))
        info.started = float(body.get("started", info.started))
        info.meta = body.get("meta") or {}
        info.last_seen = time.monotonic()
        if addresses != info.addresses:
            self._unplace(name, info.addresses - addresses)
            for address in addresses - info.addresses:
                self._where.setdefault(address, set()).add(name)
            info.addresses = addresses
        if fresh:
            _log.info("cluster: node joined the view", node=name)
            for listener in list(self._up):
                try:
                    listener(info)
                except Exception:
                    _log.exception("cluster: node-up listener failed")

    async def _reconnected(self) -> None:
        """Back after a disconnection: the others get a fresh window to show up."""
        now = time.monotonic()
        self._connected_since = now
        for info in self._peers.values():
            info.last_seen = now
        with contextlib.suppress(Exception):
            await self._beat()

    # --- serving this node's addresses ------------------------------------------------------

    async def refresh(self) -> None:
        """Serve the addresses started since the last look, and tell the others now
        (rather than at the next poll)."""
        if await self._sync_addresses():
            await self.barrier()
            await self._beat()

    async def _sync_addresses(self) -> bool:
        """Subscribe the new local addresses, unsubscribe the gone ones; True on a change."""
        async with self._sync_lock:  # the poll and refresh() must not both subscribe
            return await self._sync_addresses_locked()

    async def _sync_addresses_locked(self) -> bool:
        present = set(self.system.addresses)
        changed = False
        for address in list(self._served):
            if address not in present:
                sub = self._served.pop(address)
                changed = True
                with contextlib.suppress(Exception):
                    # drain, not unsubscribe: nats-py forgets an unsubscribed sid at
                    # once and drops, unanswered, a request already on its way here
                    # (the asker would wait out its deadline); a drained one is
                    # answered by _on_request ("no actor at ...")
                    await sub.drain()  # type: ignore[no-untyped-call]
        for address in present - set(self._served):
            subject = address_subject(address)
            self._served[address] = await self.nc.subscribe(
                subject, queue=subject, cb=self._server(address)
            )
            changed = True
        return changed

    def _server(self, address: str) -> Callable[[Msg], Any]:
        async def serve(msg: Msg) -> None:
            self._on_request(address, msg)

        return serve

    def _on_request(self, address: str, msg: Msg) -> None:
        headers = msg.headers or {}
        sender = header_text(headers.get(H_SENDER, "")) or None
        self.served_count[address] = self.served_count.get(address, 0) + 1
        broker = self.system.broker
        if self.system.lookup(address) is None:  # gone here meanwhile: not sent on elsewhere
            broker.dead_letter(address, msg.data, sender, f"no actor at {address!r}")
            if msg.reply:
                self._reply_error(
                    msg.reply, ActorDeadError(f"no actor at {address!r} on {self.node}")
                )
            return
        if not msg.reply:  # a tell
            with contextlib.suppress(AirssysError):  # recorded as a dead letter
                broker.send(address, msg.data, sender=sender)
            return
        timeout: float | None = None
        if headers.get(H_TIMEOUT):
            with contextlib.suppress(ValueError):
                timeout = float(headers[H_TIMEOUT])
        self._spawn(self._answer(address, msg.data, msg.reply, timeout, sender))

    async def _answer(
        self, address: str, payload: bytes, reply_to: str, timeout: float | None, sender: str | None
    ) -> None:
        try:
            reply = await self.system.broker.ask(address, payload, timeout=timeout, sender=sender)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._reply_error(reply_to, exc)
            return
        if reply is None:
            self._queue(reply_to, b"", {H_NONE: "1", H_FROM: self.node})
        elif isinstance(reply, bytes | bytearray | memoryview):
            self._queue(reply_to, bytes(reply), {H_FROM: self.node})
        else:
            self._reply_error(
                reply_to,
                AirssysError(
                    f"{address} answered a {type(reply).__name__}; only bytes cross nodes"
                ),
            )

    def _reply_error(self, reply_to: str, exc: BaseException) -> None:
        text = truncate(str(exc) or type(exc).__name__, 4000)
        self._queue(
            reply_to,
            text.encode("utf-8", "replace"),
            {H_ERROR: type(exc).__name__, H_FROM: self.node},
        )

    # --- sending: a queue drained by one task keeps publishes in order ----------------------

    def _check(self, subject: str, payload: bytes) -> None:
        nc = self.nc
        if self._closing or nc.is_closed:
            raise ClusterError(f"the cluster connection of node {self.node!r} is closed")
        if len(payload) > nc.max_payload:
            raise PayloadTooLarge(
                f"a message of {len(payload)} bytes is larger than NATS carries "
                f"(max_payload {nc.max_payload}) for {subject}"
            )

    def _queue(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        self._outbox.append((subject, payload, headers))
        self._outbox_ready.set()

    async def _publisher(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        while self._outbox:
            subject, payload, headers = self._outbox.popleft()
            try:
                await self.nc.publish(subject, payload, headers=headers)
            except Exception as exc:
                _log.warning(
                    "cluster: a message was not handed to NATS", subject=subject, error=exc
                )
                self.system.broker.dead_letter(
                    subject, payload, headers.get(H_SENDER), f"not handed to NATS: {exc!r}"
                )

    def _headers(self, sender: str | None) -> dict[str, str]:
        return {H_SENDER: header_value(sender) if sender else "", H_FROM: self.node}

    # --- the Remote protocol -------------------------------------------------------------------

    def tell(self, to: str, message: bytes, sender: str | None) -> None:
        subject = address_subject(to)
        self._check(subject, message)
        self._queue(subject, message, self._headers(sender))

    async def ask(self, to: str, message: bytes, timeout: float | None, sender: str | None) -> Any:
        subject = address_subject(to)
        self._check(subject, message)
        loop = asyncio.get_running_loop()
        token = str(next(self._ids))
        pending = _Pending(loop.create_future(), to, frozenset(self._where.get(to, ())), timeout)
        self._pending[token] = pending
        headers = self._headers(sender)
        if timeout is not None:
            headers[H_TIMEOUT] = repr(float(timeout))
            pending.timer = loop.call_later(timeout, self._expired, token)
        try:
            try:
                reply = f"{self._inbox}.{token}"
                await self.nc.publish(subject, message, reply=reply, headers=headers)
            except Exception as exc:
                raise ClusterError(f"cannot send to {to} through NATS: {exc!r}") from exc
            return await pending.future
        finally:
            self._pending.pop(token, None)
            if pending.timer is not None:
                pending.timer.cancel()

    def _fail(self, pending: _Pending, exc: BaseException) -> None:
        if not pending.future.done():
            pending.future.set_exception(exc)

    def _expired(self, token: str) -> None:
        pending = self._pending.get(token)
        if pending is None:
            return
        nodes = ", ".join(sorted(pending.hosts)) or "?"
        if pending.lost is not None:
            exc: Exception = ActorDeadError(
                f"{pending.address}: node {pending.lost!r} serving it left the cluster while "
                "the ask was in flight"
            )
        else:
            exc = AskTimeout(
                f"no reply from {pending.address} (node {nodes}) within {pending.timeout:g} s"
            )
        self._fail(pending, exc)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rsplit(".", 1)[-1]
        barrier = self._barriers.get(token)
        if barrier is not None:
            if not barrier.done():
                barrier.set_result(None)
            return
        pending = self._pending.get(token)
        if pending is None or pending.future.done():
            return
        headers = msg.headers or {}
        if headers.get(_STATUS) == "503":
            nodes = ", ".join(sorted(pending.hosts)) or "none"
            self._fail(
                pending,
                ActorDeadError(
                    f"no node serves {pending.address} any more (no responders; "
                    f"last known on: {nodes})"
                ),
            )
        elif H_ERROR in headers:
            exc = _error(headers[H_ERROR], msg.data.decode("utf-8", "replace"))
            self._fail(pending, exc)
        elif headers.get(H_NONE):
            pending.future.set_result(None)
        else:
            pending.future.set_result(bytes(msg.data))

    def publish(self, topic: str, message: bytes, sender: str | None) -> None:
        subject = topic_subject(topic)
        self._check(subject, message)
        headers = self._headers(sender)
        if subject == LONG_TOPIC:
            headers[H_TOPIC] = header_value(topic)
        self._queue(subject, message, headers)

    async def _on_topic(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if headers.get(H_FROM) == self.node:
            return
        if msg.subject == LONG_TOPIC:
            topic = header_text(headers.get(H_TOPIC, ""))
        else:
            topic = topic_of_subject(msg.subject)
        if not topic:
            return
        sender = header_text(headers.get(H_SENDER, "")) or None
        try:
            self.system.broker.publish_here(topic, msg.data, sender=sender, dead_letter=False)
        except AirssysError as exc:
            _log.warning("cluster: a publish from another node failed here", topic=topic, error=exc)


@asynccontextmanager
async def join_cluster(
    system: ActorSystem,
    url: str,
    *,
    node: str | None = None,
    heartbeat: float = HEARTBEAT,
    missed: int = MISSED,
    poll: float = POLL,
    connect_timeout: float = CONNECT_TIMEOUT,
    reconnect_wait: float = 0.25,
    **nats_options: Any,
) -> AsyncIterator[Cluster]:
    """Join ``system`` to the cluster at ``url`` as node ``node`` (default: the
    system's name). ``nats_options`` go to ``nats.connect`` (user, password, token,
    user_credentials, nkeys_seed, tls, tls_hostname, ...).

    An unreachable server is a :class:`ClusterError` within ``connect_timeout``
    (one attempt per server, no retries); once connected, the connection reconnects
    on its own (every ``reconnect_wait`` seconds, forever) and re-subscribes.
    """
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - the cluster extra
        raise ClusterError("the cluster needs nats-py: pip install 'airssys[cluster]'") from exc
    name = node or system.name
    holder: list[Cluster] = []

    async def disconnected() -> None:
        if holder and holder[0]._closing:
            return
        _log.warning("cluster: disconnected from NATS", node=name, url=url)

    async def reconnected() -> None:
        _log.info("cluster: reconnected to NATS", node=name, url=url)
        if holder:
            await holder[0]._reconnected()

    last_error: list[Exception] = []

    async def error(exc: Exception) -> None:
        last_error[:] = [exc]
        _log.debug("cluster: NATS error", node=name, error=repr(exc))

    options: dict[str, Any] = {
        "name": f"airssys-{name}",
        "connect_timeout": connect_timeout,
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,  # at start: each server tried twice, then an error
        "reconnect_time_wait": reconnect_wait,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
    }
    options.update({k: v for k, v in nats_options.items() if k != "max_reconnect_attempts"})
    try:
        nc = await asyncio.wait_for(
            nats.connect([part.strip() for part in url.split(",")], **options),
            connect_timeout * 2 + reconnect_wait + 1.0,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        cause = last_error[0] if last_error else exc
        raise ClusterError(f"cannot reach NATS at {url}: {cause}") from exc
    # from now on a lost connection is retried, forever
    nc.options["allow_reconnect"] = nats_options.get("allow_reconnect", True)
    nc.options["max_reconnect_attempts"] = nats_options.get("max_reconnect_attempts", -1)
    cluster = Cluster(system, nc, name, url, heartbeat=heartbeat, missed=missed, poll=poll)
    holder.append(cluster)
    try:
        await cluster.start()
        system.broker.remote = cluster
        yield cluster
    finally:
        await cluster.close()
