"""Bounded mailboxes: each backpressure strategy and the counters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airssys.actors import Actor, ActorRef, Backpressure, open_system
from airssys.errors import MailboxFull
from tests.actors.helpers import settle
from tests.waiting import stays


class Gate(Actor):
    """Handles nothing until the gate opens; then records messages."""

    def __init__(self, gate: asyncio.Event, got: list[Any]) -> None:
        self.gate = gate
        self.got = got

    async def on_message(self, message: Any) -> Any:
        await self.gate.wait()
        self.got.append(message)
        return message


async def _gated(strategy: Backpressure, capacity: int = 2) -> tuple[asyncio.Event, list[Any], Any]:
    gate = asyncio.Event()
    got: list[Any] = []
    return gate, got, lambda: Gate(gate, got)


async def _fill(ref: ActorRef, n: int) -> None:
    """Put n messages in flight: the first is taken by the actor, the rest queue."""
    for i in range(n):
        ref.tell_nowait(i)
        await asyncio.sleep(0)


async def test_wait_strategy_blocks_the_sender_until_there_is_room() -> None:
    gate, got, make = await _gated(Backpressure.WAIT)
    async with open_system() as system:
        ref = await system.spawn(make, name="g", mailbox=2, backpressure="wait")
        await _fill(ref, 3)  # one in hand, two queued: full
        blocked = asyncio.create_task(ref.tell("late"))
        await stays(lambda: not blocked.done(), hold=0.05)
        with pytest.raises(MailboxFull, match="/g is full \\(2 messages, strategy 'wait'\\)"):
            ref.tell_nowait("cannot wait")
        gate.set()
        await blocked
        assert await ref.ask("last") == "last"
    assert got == [0, 1, 2, "late", "last"]


async def test_drop_strategy_drops_the_new_message_and_counts_it() -> None:
    gate, got, make = await _gated(Backpressure.DROP)
    async with open_system() as system:
        ref = await system.spawn(make, name="g", mailbox=2, backpressure="drop")
        await _fill(ref, 3)
        await ref.tell("dropped-1")
        ref.tell_nowait("dropped-2")
        with pytest.raises(MailboxFull):  # a dropped ask fails at once
            await ref.ask("dropped-3")
        stats = ref.mailbox
        assert (stats.queued, stats.dropped) == (2, 3)
        gate.set()
        await settle(lambda: ref.mailbox.queued == 0)
        assert await ref.ask("after") == "after"
        assert ref.mailbox.processed == 4
    assert got == [0, 1, 2, "after"]


async def test_raise_strategy_raises_mailbox_full() -> None:
    gate, got, make = await _gated(Backpressure.RAISE)
    async with open_system() as system:
        ref = await system.spawn(make, name="g", mailbox=2, backpressure="raise")
        await _fill(ref, 3)
        with pytest.raises(MailboxFull, match="strategy 'raise'"):
            await ref.tell("one too many")
        assert ref.mailbox.dropped == 0
        gate.set()
        await settle(lambda: ref.mailbox.queued == 0)
        assert await ref.ask("fine") == "fine"
    assert got == [0, 1, 2, "fine"]


async def test_counters_track_queued_and_processed() -> None:
    gate, _, make = await _gated(Backpressure.WAIT)
    async with open_system() as system:
        ref = await system.spawn(make, name="g", mailbox=10)
        await _fill(ref, 5)
        assert (ref.mailbox.queued, ref.mailbox.processed) == (4, 0)
        gate.set()
        await ref.ask("sync")
        assert (ref.mailbox.queued, ref.mailbox.processed) == (0, 6)
        assert ref.mailbox.capacity == 10


async def test_capacity_must_be_positive() -> None:
    async with open_system() as system:
        with pytest.raises(ValueError, match="at least 1"):
            await system.spawn(Actor, mailbox=0)
