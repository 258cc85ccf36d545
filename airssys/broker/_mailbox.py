"""Bounded mailboxes: what the broker fills and an actor empties.

A deque plus one waiter future for the single consumer: cheaper than
``asyncio.Queue`` on the per-message path, and far cheaper than anyio memory
streams. Senders that must wait (strategy ``wait``) park on
futures of their own, woken in order as the actor takes messages.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from ..errors import ActorDeadError, MailboxFull
from ..messages import Envelope

__all__ = ("Backpressure", "Mailbox", "MailboxStats")


class Backpressure(StrEnum):
    """What a full mailbox does with one more message."""

    WAIT = "wait"
    """``tell``/``ask`` wait for room; ``tell_nowait`` raises MailboxFull."""
    DROP = "drop"
    """The new message is dropped and counted; an ask fails at once with MailboxFull."""
    RAISE = "raise"
    """The sender gets MailboxFull."""


class MailboxStats:
    """Counters: currently queued, handled, and dropped by backpressure."""

    __slots__ = ("capacity", "dropped", "processed", "queued")

    def __init__(self, capacity: int, queued: int, processed: int, dropped: int) -> None:
        self.capacity = capacity
        self.queued = queued
        self.processed = processed
        self.dropped = dropped

    def __repr__(self) -> str:
        return (
            f"MailboxStats(capacity={self.capacity}, queued={self.queued}, "
            f"processed={self.processed}, dropped={self.dropped})"
        )


_WOKEN: Final = None


class Mailbox:
    """A bounded FIFO with one consumer. Not thread-safe: use from the event loop."""

    __slots__ = (
        "_closed",
        "_items",
        "_putters",
        "_reserve_lock",
        "_waiter",
        "capacity",
        "dropped",
        "on_accept",
        "owner",
        "processed",
        "reserved",
        "strategy",
    )

    def __init__(self, capacity: int, strategy: Backpressure, owner: str) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.strategy = Backpressure(strategy)
        self.owner = owner
        self._items: deque[Envelope] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.processed = 0
        self.dropped = 0
        self.reserved = 0  # slots promised to senders on other threads (see reserve)
        self.on_accept: Callable[[Envelope], None] | None = None
        """A durable component's journal: called for each envelope before it is queued
        (an exception refuses the message)."""
        self._reserve_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def stats(self) -> MailboxStats:
        return MailboxStats(self.capacity, len(self._items), self.processed, self.dropped)

    def _dead(self) -> ActorDeadError:
        return ActorDeadError(f"actor {self.owner} is stopped; it cannot take messages")

    def _full(self) -> MailboxFull:
        return MailboxFull(
            f"mailbox of {self.owner} is full ({self.capacity} messages, "
            f"strategy {self.strategy.value!r})"
        )

    def put_nowait(self, envelope: Envelope) -> bool:
        """Queue without waiting. False when the DROP strategy dropped it."""
        if self._closed:
            raise self._dead()
        if len(self._items) + self.reserved >= self.capacity:
            if self.strategy is Backpressure.DROP:
                self.dropped += 1
                if envelope.reply is not None and not envelope.reply.done():
                    envelope.reply.set_exception(self._full())
                return False
            raise self._full()
        self._append(envelope)
        return True

    def _append(self, envelope: Envelope) -> None:
        if self.on_accept is not None:
            self.on_accept(envelope)
        self._items.append(envelope)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(_WOKEN)

    async def put(self, envelope: Envelope) -> bool:
        """Queue, waiting for room under the WAIT strategy."""
        if self.strategy is Backpressure.WAIT:
            while len(self._items) + self.reserved >= self.capacity and not self._closed:
                putter = asyncio.get_running_loop().create_future()
                self._putters.append(putter)
                try:
                    await putter
                except BaseException:
                    putter.cancel()
                    self._wake_putter()  # pass our turn on
                    raise
        return self.put_nowait(envelope)

    def reserve(self, envelope: Envelope | None = None) -> None:
        """Promise one slot now, from any thread; :meth:`put_reserved` fills it later.

        How a component's ``send`` learns at the call that a mailbox is full (or its
        actor stopped) although delivery happens on the event loop afterwards. A
        refusal counts as dropped whatever the strategy: a wasm call cannot wait.
        ``envelope`` goes through ``on_accept`` here, on the caller's thread (a durable
        component's journal is thread-safe): it is kept before the sender is told.
        """
        with self._reserve_lock:
            if self._closed:
                raise self._dead()
            if len(self._items) + self.reserved >= self.capacity:
                self.dropped += 1
                raise self._full()
            self.reserved += 1
        on_accept = self.on_accept
        if on_accept is not None and envelope is not None:
            try:
                on_accept(envelope)
            except BaseException:
                with self._reserve_lock:
                    self.reserved -= 1
                raise

    def put_reserved(self, envelope: Envelope) -> None:
        """Fill a slot promised by :meth:`reserve` (event loop only)."""
        with self._reserve_lock:
            self.reserved -= 1
        if self._closed:
            raise self._dead()
        self._append(envelope)

    def _wake_putter(self) -> None:
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(_WOKEN)
                return

    def envelopes(self) -> list[Envelope]:
        """The queued envelopes, oldest first (a copy)."""
        return list(self._items)

    def get_nowait(self) -> Envelope | None:
        """The next envelope, or None when empty."""
        if not self._items:
            return None
        envelope = self._items.popleft()
        if self._putters:
            self._wake_putter()
        return envelope

    def take(self, limit: int) -> list[Envelope]:
        """Up to ``limit`` envelopes, oldest first (possibly none)."""
        items = self._items
        n = min(limit, len(items))
        batch = [items.popleft() for _ in range(n)]
        if n and self._putters:
            for _ in range(n):
                self._wake_putter()
        return batch

    def requeue(self, envelopes: list[Envelope]) -> None:
        """Put envelopes back at the front, in their order (for the next incarnation)."""
        self._items.extendleft(reversed(envelopes))

    async def wait(self) -> None:
        """Return once a message is queued (or the mailbox is woken to stop)."""
        if self._items:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def wake(self) -> None:
        """Wake the consumer even though nothing arrived (to look at a stop request)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(_WOKEN)

    def close(self, reason: str) -> int:
        """Refuse new messages; fail every queued ask with ActorDeadError. Returns count."""
        self._closed = True
        failed = 0
        while self._items:
            envelope = self._items.popleft()
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(ActorDeadError(reason))
                failed += 1
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(_WOKEN)
        return failed

    def reopen(self) -> None:
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed
