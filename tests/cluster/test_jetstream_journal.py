"""A durable journal in JetStream against a real nats-server: the same records as the
local journal, read back by the next owner, and an old owner fenced by a takeover."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys.cluster._jetstream import Bridge, Fenced, JetStreamJournal, ensure_stream
from airssys.durability import JournalError
from airssys.durability._journal import Handled
from tests.cluster.conftest import JetStreamCluster

EFFECTS = bytes(32)


@pytest.fixture
def bridge(jetstream: JetStreamCluster) -> Iterator[Bridge]:
    made = Bridge([jetstream.servers[0].url], name="test")
    try:
        made.call(lambda: ensure_stream(made.js, 1))
        yield made
    finally:
        made.close()


def journal(bridge: Bridge, where: Path, owner: int) -> JetStreamJournal:
    return JetStreamJournal(
        where / f"copy-{owner}.journal", bridge=bridge, address="/s/c", owner=owner
    )


def test_records_are_read_back_by_the_next_owner(bridge: Bridge, tmp_path: Path) -> None:
    first = journal(bridge, tmp_path, owner=1)
    for n in range(1, 4):
        seq = first.accept("/a", "message", f"m{n}".encode())
        first.record([Handled(seq, "ok", f"r{n}".encode(), b"", EFFECTS)])
    first.record([Handled(-1, "ok", b"asked", b"", EFFECTS, ("/b", "message", b"q", None))])
    first.accept("/a", "message", b"pending")
    head = first.replay_hash
    first.close()

    second = journal(bridge, tmp_path, owner=2)  # another node's copy: from the stream only
    try:
        assert second.replay_hash == head
        assert [(e.seq, e.payload, e.reply) for e in second.handled()] == [
            (1, b"m1", b"r1"), (2, b"m2", b"r2"), (3, b"m3", b"r3"), (4, b"q", b"asked"),
        ]  # fmt: skip
        assert [(p.seq, p.payload) for p in second.pending()] == [(5, b"pending")]
        assert second.accept("/a", "message", b"next") == 6
    finally:
        second.close()


def test_a_takeover_fences_the_old_owner(bridge: Bridge, tmp_path: Path) -> None:
    old = journal(bridge, tmp_path, owner=1)
    old.accept("/a", "message", b"one")
    new = journal(bridge, tmp_path, owner=2)  # appends its takeover
    try:
        with pytest.raises(Fenced, match="taken over by another node"):
            old.accept("/a", "message", b"two")
        assert old.broken
        with pytest.raises(JournalError):
            old.accept("/a", "message", b"three")
        assert new.accept("/a", "message", b"two") == 2
        assert [p.payload for p in new.pending()] == [b"one", b"two"]
    finally:
        old.close()
        new.close()
    again = journal(bridge, tmp_path, owner=3)
    try:
        assert [p.payload for p in again.pending()] == [b"one", b"two"]
    finally:
        again.close()


def test_a_record_a_stale_owner_slipped_in_is_skipped(bridge: Bridge, tmp_path: Path) -> None:
    """What a server bug letting a stale append through would leave: the reader skips a
    record whose owner is older than a takeover before it."""
    new = journal(bridge, tmp_path, owner=5)
    new.accept("/a", "message", b"kept")
    new.close()

    async def stale() -> None:
        from airssys.durability._journal import _accept_body, _frame

        body = _frame(b"A", _accept_body(9, "/a", "message", b"stale", None))
        await bridge.js.publish("airssys.journal.s.c", body, headers={"airssys-owner": "4"})

    bridge.call(stale)
    reader = journal(bridge, tmp_path, owner=6)
    try:
        assert [p.payload for p in reader.pending()] == [b"kept"]
    finally:
        reader.close()


def test_a_snapshot_purges_what_it_covers(bridge: Bridge, tmp_path: Path) -> None:
    first = journal(bridge, tmp_path, owner=1)
    for n in range(1, 6):
        seq = first.accept("/a", "message", bytes([n]))
        if n < 5:
            first.record([Handled(seq, "ok", None, b"", EFFECTS)])
    first.snapshot(4, b"state")
    first.close()

    async def count() -> int:
        info = await bridge.js.stream_info("AIRSSYS_JOURNAL", subjects_filter="airssys.journal.s.c")
        return int((info.state.subjects or {}).get("airssys.journal.s.c", 0))

    assert bridge.call(count) == 1  # the snapshot and the pending message, in one message
    second = journal(bridge, tmp_path, owner=2)
    try:
        snapshot = second.latest_snapshot()
        assert snapshot is not None and snapshot.state == b"state"
        assert [p.payload for p in second.pending()] == [bytes([5])]
    finally:
        second.close()
