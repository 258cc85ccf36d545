"""Durable journals in JetStream, and the leases that fence their owners.

In a cluster whose NATS servers run JetStream, a placed durable component's journal
lives in the stream ``AIRSSYS_JOURNAL`` (subjects ``airssys.journal.<address>``, one
subject per address, ``replicas`` copies): the stream is the truth, and the node
running the component keeps a local copy of it (its journal file) for fast replay.
Every record the local journal would write (:mod:`airssys.durability._journal`) is
published first, one NATS message per record, and written to the local copy only
once JetStream acknowledged it; reading the subject back in order gives the same
bytes, so replay, snapshots and the tools are the local journal's.

**Owners are fenced twice.** A placed supervisor is owned through a lease, a key in
the JetStream key-value bucket ``airssys_owners``: taken with ``create`` (or with a
revision-checked ``update`` of a lease whose node left the cluster view), renewed by
revision-checked ``update`` every ``renew`` seconds; the revision that took it is
the owner's number. Opening a journal appends a *takeover* message carrying that
number, and every append says which sequence it expects last on its subject
(``Nats-Expected-Last-Subject-Sequence``): after a takeover, the old owner's next
append fails and its journal takes no more writes. Each message also carries its
owner's number, and reading the subject skips a message whose owner is older than
a takeover before it, so even a server that let a stale append through (nats-server
2.9.x has had such bugs) cannot give the journal two writers.

The journal's methods are synchronous (called on the event loop, or a component's
thread); a :class:`Bridge` runs a NATS connection of its own on a thread of its own
and answers them, so no caller needs the event loop that the cluster runs on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .._logging import get_logger, truncate
from ..durability import JOURNAL_MAGIC as MAGIC
from ..durability import Journal
from ..errors import ClusterError, JournalError
from ._subjects import encode_token

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = (
    "JOURNAL_STREAM",
    "OWNERS_BUCKET",
    "Bridge",
    "JetStreamJournal",
    "Owners",
    "journal_subject",
)

_log = get_logger("airssys.cluster")
T = TypeVar("T")

JOURNAL_STREAM: Final = "AIRSSYS_JOURNAL"
JOURNAL_PREFIX: Final = "airssys.journal"
OWNERS_BUCKET: Final = "airssys_owners"
OWNER: Final = "airssys-owner"
"""Header: the lease revision of the node that appended the message."""
TAKEOVER: Final = "airssys-takeover"
"""Header of a takeover message (no body): the new owner's lease revision."""
EXPECTED: Final = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE: Final = 10071
"""JetStream's error code for an expected last (subject) sequence that does not hold."""


def journal_subject(address: str) -> str:
    """``airssys.journal.<segment>...``: the address's segments, encoded like the
    cluster's address subjects (docs/cluster.md)."""
    return ".".join([JOURNAL_PREFIX, *(encode_token(p) for p in address.strip("/").split("/"))])


class Bridge:
    """A NATS connection with JetStream on a thread of its own, for synchronous callers.

    ``call(make, timeout)`` runs ``make()``'s coroutine there and waits for its result;
    closing drains the connection and joins the thread.
    """

    def __init__(
        self,
        servers: list[str],
        *,
        name: str,
        timeout: float = 2.0,
        nats_options: dict[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"airssys-jetstream:{name}", daemon=True
        )
        self._thread.start()
        self._nc: Client | None = None
        self.js: JetStreamContext
        try:
            self.call(lambda: self._connect(servers, name, nats_options or {}), timeout * 2)
        except BaseException:
            self._stop_loop()
            raise

    async def _connect(self, servers: list[str], name: str, options: dict[str, Any]) -> None:
        import nats

        async def error(exc: Exception) -> None:  # nats-py's own prints a traceback
            _log.debug("the journal's NATS connection", error=truncate(repr(exc), 200))

        try:
            self._nc = await nats.connect(
                servers,
                error_cb=error,
                name=f"airssys-journal:{name}",
                connect_timeout=self.timeout,
                reconnect_time_wait=0.25,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                **options,
            )
        except Exception as exc:
            raise ClusterError(f"the journal's NATS connection failed: {exc}") from exc
        self.js = self._nc.jetstream(timeout=self.timeout)

    @property
    def connected(self) -> bool:
        return self._nc is not None and bool(self._nc.is_connected)

    def call(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``make()`` on the bridge's loop; its result (or its exception) here."""

        async def run() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(self.timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("JetStream did not answer in time") from None

    def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                self.call(nc.close, self.timeout)
            except Exception as exc:  # closing anyway: the loop and thread go too
                _log.debug("closing the journal's NATS connection failed", error=str(exc))
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()


async def ensure_stream(js: JetStreamContext, replicas: int, *, patience: float = 60.0) -> None:
    """The journal stream and the owners bucket, made when missing. Several nodes may
    start at once, and a replicated stream takes a while to place on a loaded machine:
    an attempt that times out, or that another node's made meanwhile, is tried again,
    for up to ``patience`` seconds."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    async def stream() -> None:
        try:
            await js.stream_info(JOURNAL_STREAM)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=JOURNAL_STREAM,
                    subjects=[f"{JOURNAL_PREFIX}.>"],
                    retention=RetentionPolicy.LIMITS,
                    storage=StorageType.FILE,
                    discard=DiscardPolicy.OLD,
                    num_replicas=replicas,
                    max_msg_size=-1,
                )
            )

    async def bucket() -> None:
        try:
            await js.key_value(OWNERS_BUCKET)
        except NotFoundError:  # nats-py's BucketNotFoundError is one
            await js.create_key_value(bucket=OWNERS_BUCKET, history=1, replicas=replicas)

    deadline = time.monotonic() + patience
    for make in (stream, bucket):
        while True:
            try:
                await make()
                break
            except Exception:  # a timeout, or made by another node meanwhile: look again
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)


class Fenced(JournalError):
    """Another node took this journal over: this one appends nothing more."""


class JetStreamJournal(Journal):
    """A durable address's journal whose truth is its subject in the journal stream.

    ``owner`` is the lease revision this node holds for the address's supervisor.
    Opening reads the subject (skipping what stale owners appended), writes the local
    copy at ``path``, then appends the takeover message.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        bridge: Bridge,
        address: str,
        owner: int,
        fsync: str = "batch",
    ) -> None:
        self.bridge = bridge
        self.address = address
        self.subject = journal_subject(address)
        self.owner = owner
        self._last = 0  # the subject's last stream sequence, as far as this owner knows
        self._live = False
        super().__init__(path, fsync=fsync)
        try:
            self._last = self.bridge.call(lambda: self._publish(b"", takeover=True))
        except BaseException:
            self.close()
            raise
        self._live = True

    # --- the stream ----------------------------------------------------------------------

    async def _publish(self, body: bytes, *, takeover: bool = False) -> int:
        from nats.js.errors import APIError

        if not self.bridge.connected:  # fail at once: the caller may be the event loop
            raise JournalError(f"cannot append to {self.address}'s journal: no NATS connection")
        headers = {OWNER: str(self.owner), EXPECTED: str(self._last)}
        if takeover:
            headers[TAKEOVER] = str(self.owner)
        try:
            ack = await self.bridge.js.publish(self.subject, body, headers=headers)
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise Fenced(
                    f"the journal of {self.address} was taken over by another node (its "
                    f"stream subject {self.subject} moved past sequence {self._last}): "
                    "this node appends nothing more to it"
                ) from exc
            raise JournalError(
                f"JetStream refused a record of {self.address}'s journal: {exc}"
            ) from exc
        except Exception as exc:
            raise JournalError(
                f"cannot append to {self.address}'s journal in JetStream: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return int(ack.seq)

    async def _fetch(self) -> tuple[bytes, int]:
        """The subject's records in order (stale owners' skipped), and its last sequence."""
        from nats.js.api import DeliverPolicy
        from nats.js.errors import NotFoundError

        js = self.bridge.js
        try:
            last = await js.get_last_msg(JOURNAL_STREAM, self.subject)
        except NotFoundError:
            return MAGIC, 0
        end = int(last.seq or 0)
        parts = [MAGIC]
        newest = 0  # the highest takeover seen so far
        sub = await js.subscribe(
            self.subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=self.bridge.timeout)
                headers = msg.headers or {}
                owner = int(headers.get(OWNER, "0"))
                if TAKEOVER in headers:
                    newest = max(newest, int(headers[TAKEOVER]))
                elif owner >= newest:
                    parts.append(msg.data)
                else:
                    _log.warning(
                        "skipped a record appended by a stale owner of a journal",
                        address=self.address,
                        sequence=msg.metadata.sequence.stream,
                        owner=owner,
                        current=newest,
                    )
                if msg.metadata.sequence.stream >= end:
                    break
        finally:
            await sub.unsubscribe()
        if newest > self.owner:
            raise Fenced(
                f"the journal of {self.address} belongs to a newer owner (lease revision "
                f"{newest}, this node's is {self.owner}): this node does not open it"
            )
        return b"".join(parts), end

    # --- the local journal's I/O, through the stream ---------------------------------------

    def _load(self) -> None:
        if not self.bridge.connected:  # fail at once: the caller may be the event loop
            raise JournalError(f"cannot read {self.address}'s journal: no NATS connection")
        try:
            data, self._last = self.bridge.call(self._fetch, self.bridge.timeout * 4)
        except (JournalError, ClusterError):
            raise
        except Exception as exc:
            raise JournalError(
                f"cannot read {self.address}'s journal from JetStream: {type(exc).__name__}: {exc}"
            ) from exc
        try:  # the local copy: what the stream holds
            os.ftruncate(self._fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise JournalError(f"cannot write the local copy {self.path}: {exc}") from exc
        super()._load()

    def _write(self, data: bytes) -> None:
        if self._live:
            if self._broken is not None:
                raise JournalError(self._broken)
            try:
                self._last = self.bridge.call(lambda: self._publish(data))
            except Fenced as exc:
                self._broken = str(exc)
                raise
            except (JournalError, TimeoutError) as exc:
                # stored or not, nobody can tell: the journal is read again at a restart
                self._broken = (
                    f"the journal of {self.address} takes no more writes: {exc}; it is read "
                    "from JetStream again when the component restarts"
                )
                raise JournalError(self._broken) from exc
        super()._write(data)

    def _compact(self, data: bytes) -> None:
        """A snapshot: one message with the snapshot and what is still pending, then
        the subject's messages before it purged."""
        if self._live:
            body = data[len(MAGIC) :]
            try:
                self._last = seq = self.bridge.call(lambda: self._publish(body))
                self.bridge.call(
                    lambda: self.bridge.js.purge_stream(
                        JOURNAL_STREAM, subject=self.subject, seq=seq
                    )
                )
            except Fenced as exc:
                self._broken = str(exc)
                raise
            except (JournalError, TimeoutError) as exc:
                raise JournalError(f"cannot compact {self.address}'s journal: {exc}") from exc
        super()._compact(data)

    def _sync(self) -> None:
        """Nothing: JetStream acknowledged every record (the local copy is a cache)."""

    def _sync_behind(self) -> None:
        """Nothing: see :meth:`_sync`."""

    def reopen(self) -> Journal:
        self.close()
        return JetStreamJournal(
            self.path, bridge=self.bridge, address=self.address, owner=self.owner, fsync=self.fsync
        )


def local_copy(data_dir: Path, system: str, address: str) -> Path:
    """Where a node keeps its copy of a JetStream journal."""
    from ..durability import journal_path

    return journal_path(data_dir, f"{system}.jetstream", address)


class Owners:
    """The leases of placed supervisors (one key each in the owners bucket), taken,
    renewed and given back by this node, on the cluster's event loop.

    ``alive(node)`` says whether a node is in this node's cluster view: a lease held
    by a node that left the view is taken over (revision-checked, so only one node
    wins); a lease held by a live node is not. ``on_lost(supervisor)`` is called when
    a renewal finds another owner, or when no renewal succeeded for ``lease``
    seconds (this node is cut off): the node stops serving that supervisor.
    """

    def __init__(
        self,
        js: JetStreamContext,
        node: str,
        *,
        alive: Callable[[str], bool],
        on_lost: Callable[[str], Awaitable[None]],
        lease: float = 3.0,
        renew: float = 1.0,
    ) -> None:
        self.js = js
        self.node = node
        self.lease = lease
        self.renew = renew
        self._alive = alive
        self._on_lost = on_lost
        self.held: dict[str, int] = {}
        """supervisor -> the revision of this node's lease (its owner number)."""
        self._renewing: dict[str, asyncio.Task[None]] = {}

    @staticmethod
    def key(supervisor: str) -> str:
        """A key-value key (letters, digits, ``-_=``): the encoded name, ``%`` as ``=``."""
        return "sup." + encode_token(supervisor).replace("%", "=")

    def _value(self, node: str | None) -> bytes:
        return json.dumps({"node": node, "pid": os.getpid(), "at": time.time()}).encode()

    async def take(self, supervisor: str) -> int | None:
        """This node's owner number for ``supervisor``, or None when another live node
        holds it (or won the race to take it)."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        kv = await self.js.key_value(OWNERS_BUCKET)
        key = self.key(supervisor)
        try:
            revision = int(await kv.create(key, self._value(self.node)))
        except KeyWrongLastSequenceError:
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                return None  # deleted meanwhile: the next placement round tries again
            holder = json.loads(entry.value or b"{}").get("node")
            if holder not in (None, self.node) and self._alive(holder):
                return None
            try:
                revision = int(await kv.update(key, self._value(self.node), last=entry.revision))
            except KeyWrongLastSequenceError:
                return None  # another node took it first
        self.held[supervisor] = revision
        self._renewing[supervisor] = asyncio.get_running_loop().create_task(
            self._renew(supervisor), name=f"airssys-lease:{supervisor}"
        )
        return revision

    async def _renew(self, supervisor: str) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        kv = await self.js.key_value(OWNERS_BUCKET)
        key = self.key(supervisor)
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.renew)
            try:
                self.held[supervisor] = int(
                    await asyncio.wait_for(
                        kv.update(key, self._value(self.node), last=self.held[supervisor]),
                        self.renew,
                    )
                )
                renewed = time.monotonic()
                continue
            except KeyWrongLastSequenceError:
                why = "another node took its lease"
            except Exception as exc:  # no answer: cut off from NATS?
                if time.monotonic() - renewed < self.lease - self.renew:
                    continue
                why = f"its lease could not be renewed for {self.lease:g} s ({exc!r:.200})"
            _log.warning(
                "cluster: lost a placed supervisor's lease", supervisor=supervisor, why=why
            )
            self.held.pop(supervisor, None)
            self._renewing.pop(supervisor, None)
            await self._on_lost(supervisor)
            return

    async def give_back(self, supervisor: str) -> None:
        """Stop renewing and mark the lease free (the supervisor stopped here)."""
        task = self._renewing.pop(supervisor, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        revision = self.held.pop(supervisor, None)
        if revision is None:
            return
        try:
            kv = await self.js.key_value(OWNERS_BUCKET)
            await asyncio.wait_for(
                kv.update(self.key(supervisor), self._value(None), last=revision), 2.0
            )
        except Exception as exc:  # taken meanwhile, or no NATS: the successor takes it anyway
            _log.debug(
                "cluster: could not give a lease back", supervisor=supervisor, error=str(exc)
            )

    async def close(self) -> None:
        for supervisor in list(self.held):
            await self.give_back(supervisor)
