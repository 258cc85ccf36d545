"""The broker on its own: endpoints in a plain dict, no actors at all (it sits below
them and knows them only through the Directory it is given)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from airssys import codec
from airssys.broker import Backpressure, Mailbox, MessageBroker, PayloadGate
from airssys.errors import (
    ActorDeadError,
    AskTimeout,
    CodecError,
    InvalidName,
    MailboxFull,
    PayloadTooLarge,
)
from airssys.messages import Envelope
from airssys.security import CompiledGrants
from tests.waiting import until


@dataclass
class Box:
    """An endpoint as the broker sees one: an address, a mailbox, optional checks."""

    address: str
    capacity: int = 10
    strategy: Backpressure = Backpressure.RAISE
    gate: PayloadGate | None = None
    grants: CompiledGrants | None = None
    mailbox: Mailbox = field(init=False)

    def __post_init__(self) -> None:
        self.mailbox = Mailbox(self.capacity, self.strategy, self.address)

    def taken(self) -> list[Any]:
        return [envelope.message for envelope in self.mailbox.take(100)]


def broker_with(*boxes: Box) -> MessageBroker:
    broker = MessageBroker({box.address: box for box in boxes}, set())
    broker.bind_loop(asyncio.get_running_loop())
    return broker


async def test_send_queues_at_the_endpoint_with_the_sender() -> None:
    box = Box("/a")
    broker = broker_with(box)
    broker.send("/a", b"one", sender="/me")
    envelope = box.mailbox.get_nowait()
    assert isinstance(envelope, Envelope)
    assert (envelope.message, envelope.sender) == (b"one", "/me")


async def test_unknown_stopped_and_malformed_addresses() -> None:
    box = Box("/a")
    broker = broker_with(box)
    with pytest.raises(ActorDeadError, match="no actor at '/b'"):
        broker.send("/b", b"x")
    assert broker.dead_letters[-1].to == "/b"
    with pytest.raises(InvalidName):
        broker.send("no-slash", b"x")  # the caller's error, not a dead letter
    assert broker.dead_letter_count == 1
    box.mailbox.close("stopped")
    with pytest.raises(ActorDeadError, match="actor /a is stopped"):
        broker.send("/a", b"x")
    assert broker.dead_letter_reasons == {"no_actor": 1, "stopped": 1}


async def test_ask_is_answered_through_the_reply_future() -> None:
    box = Box("/echo")
    broker = broker_with(box)

    async def serve() -> None:
        await box.mailbox.wait()
        envelope = box.mailbox.get_nowait()
        assert envelope is not None and envelope.reply is not None
        envelope.reply.set_result(envelope.message.upper())

    server = asyncio.create_task(serve())
    assert await broker.ask("/echo", b"hi", timeout=5) == b"HI"
    await server
    assert broker.pending_asks == 0


async def test_an_unanswered_ask_times_out_naming_the_address() -> None:
    broker = broker_with(Box("/silent"))
    with pytest.raises(AskTimeout, match="/silent"):
        await broker.ask("/silent", b"?", timeout=0.05)
    with pytest.raises(ValueError, match="positive number"):
        await broker.ask("/silent", b"?", timeout=0)
    assert broker.pending_asks == 0


async def test_the_gate_refuses_before_anything_is_queued() -> None:
    def oversize(size: int) -> None:
        raise PayloadTooLarge(f"{size} bytes is more than 8")

    gate = PayloadGate(oversize)
    gate.ceiling = 8
    box = Box("/c", gate=gate)
    broker = broker_with(box)
    with pytest.raises(CodecError, match="takes bytes with a multicodec prefix"):
        broker.send("/c", {"not": "bytes"})
    with pytest.raises(CodecError):
        broker.send("/c", b"\xff\xff\xff no such codec")
    with pytest.raises(PayloadTooLarge, match="more than 8"):
        broker.send("/c", codec.encode(b"x" * 20, "raw"))
    assert len(box.mailbox) == 0
    assert broker.dead_letter_count == 3
    broker.send("/c", codec.encode(b"ok", "raw"))
    assert box.taken() == [codec.encode(b"ok", "raw")]


async def test_a_full_mailbox_drops_or_raises_and_says_so() -> None:
    drop = Box("/drop", capacity=1, strategy=Backpressure.DROP)
    refuse = Box("/refuse", capacity=1)
    broker = broker_with(drop, refuse)
    broker.send("/drop", b"1")
    broker.send("/drop", b"2")  # dropped, counted, a dead letter
    assert drop.mailbox.dropped == 1
    assert "dropped" in broker.dead_letters[-1].reason
    broker.send("/refuse", b"1")
    with pytest.raises(MailboxFull):
        broker.send("/refuse", b"2")
    assert broker.dead_letter_reasons["mailbox_full"] == 2


async def test_publish_reaches_every_matching_subscriber() -> None:
    a, b = Box("/a"), Box("/b")
    broker = broker_with(a, b)
    broker.subscribe("orders.*", "/a")
    broker.subscribe("orders.#", "/b")
    assert broker.publish("orders.eu", b"m") == 2
    assert broker.publish("orders.eu.late", b"n") == 1
    assert (a.taken(), b.taken()) == ([b"m"], [b"m", b"n"])
    assert broker.publish("nobody", b"x") == 0
    assert broker.dead_letters[-1].to == "topic:nobody"


async def test_a_send_from_a_worker_thread_is_reserved_there_and_queued_on_the_loop() -> None:
    box = Box("/a", capacity=1)
    broker = broker_with(box)
    errors: list[BaseException] = []

    def component() -> None:
        broker.send_from("/c", "/a", codec.encode(b"1", "raw"))
        try:  # the one slot is promised: the second send is refused at the call
            broker.send_from("/c", "/a", codec.encode(b"2", "raw"))
        except MailboxFull as exc:
            errors.append(exc)

    thread = threading.Thread(target=component)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    await until(lambda: len(box.mailbox))
    assert box.taken() == [codec.encode(b"1", "raw")]
    assert len(errors) == 1 and box.mailbox.dropped == 1
