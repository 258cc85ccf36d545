"""Durable components in a system: replay after a trap and after a restart,
redelivery of accepted messages, effects suppressed on replay, divergence refused."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import cbor2
import msgpack
import pytest

from airssys import codec
from airssys.actors import Actor, ActorState, open_system
from airssys.durability import Journal, check_journal, journal_path
from airssys.durability._journal import GENESIS, MAGIC, _accept_body, _frame, chain, scan
from airssys.errors import ActorStartError, ComponentTrap
from tests.conftest import fixture_path
from tests.waiting import stays, until

TICK = codec.encode(b"x", "raw")


def counter_manifest(tmp_path: Path, durability: str = "journal = true") -> Path:
    path = tmp_path / "counter.toml"
    path.write_text(
        '[component]\nname = "counter"\nversion = "1.0.0"\n'
        f'wasm = "{fixture_path("counter")}"\n\n[durability]\n{durability}\n'
    )
    return path


def forge_reply(path: Path, seq: int, reply: bytes) -> None:
    """Rewrite the journal with another reply recorded for message ``seq``."""
    data = path.read_bytes()
    parts = [MAGIC]
    for record in scan(data).records:
        kind, body = record.kind, record.value
        if kind == "B":  # the hash kept: the reply differs before the batch's hash is checked
            rows = [(*row[:2], reply, *row[3:]) if row[0] == seq else row for row in body.rows]
            encoded = body.head + msgpack.packb(rows)
        else:
            encoded = _accept_body(*body) if kind == "A" else cbor2.dumps(body)
        parts.append(_frame(kind.encode(), encoded))
    path.write_bytes(b"".join(parts))


def count(reply: bytes) -> int:
    return int(struct.unpack("<I", reply)[0])


async def running(system: Any, address: str) -> None:
    ref = system.ref(address)
    async with asyncio.timeout(10):
        while ref.state is not ActorState.RUNNING:
            await asyncio.sleep(0.005)


async def test_the_count_survives_a_restart_of_the_system(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_supervisor([system.component_spec("c", manifest)], name="app")
        for _ in range(20):
            system.send("/app/c", TICK)
        assert count(await system.ask("/app/c", TICK)) == 21
        first_hash = system.replay_hash("/app/c")
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_supervisor([system.component_spec("c", manifest)], name="app")
        assert system.replay_hash("/app/c") == first_hash  # replayed to the same hash
        assert count(await system.ask("/app/c", TICK)) == 22
        assert system.replay_hash("/app/c") != first_hash


async def test_without_the_journal_the_count_starts_again(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path, "journal = false")
    for _ in range(2):
        async with open_system(storage="memory", data_dir=tmp_path) as system:
            await system.spawn_component(manifest, name="c")
            assert count(await system.ask("/c", TICK)) == 1
            with pytest.raises(Exception, match="not a durable component"):
                system.replay_hash("/c")


async def test_durability_can_be_given_where_the_component_is_spawned(tmp_path: Path) -> None:
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(
            fixture_path("counter"), name="c", durability={"journal": True, "fsync": "always"}
        )
        await system.ask("/c", TICK)
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(
            fixture_path("counter"), name="c", durability={"journal": True}
        )
        assert count(await system.ask("/c", TICK)) == 2
        with pytest.raises(Exception, match="fsync"):
            await system.spawn_component(
                fixture_path("counter"), name="d", durability={"journal": True, "fsync": "x"}
            )


async def test_a_trap_keeps_the_state_and_skips_the_poison(
    tmp_path: Path, built_components: Path, shared_cache: Path
) -> None:
    async with open_system(cache_dir=shared_cache, storage="memory", data_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [
                system.component_spec(
                    "crasher", built_components / "crasher", durability={"journal": True}
                )
            ],
            name="app",
        )
        for n in range(3):
            reply = codec.decode(await system.ask("/app/crasher", codec.encode(n)))
        assert reply["handled"] == 3
        with pytest.raises(ComponentTrap):
            await system.ask("/app/crasher", codec.encode("poison"))
        await running(system, "/app/crasher")
        reply = codec.decode(await system.ask("/app/crasher", codec.encode("after")))
        assert reply["handled"] == 4  # the poison did not count, the first three did
        assert system.ref("/app/crasher").restarts == 1
        journal = system.resources.journal("/app/crasher").journal
        assert [e.outcome for e in journal.handled()] == ["ok", "ok", "ok", "failed", "ok"]


async def test_accepted_messages_of_a_killed_process_are_delivered_once(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        for _ in range(5):
            await system.ask("/c", TICK)
    # what a killed process leaves: three messages accepted, never handled
    journal = Journal(journal_path(tmp_path, "n", "/c"))
    for _ in range(3):
        journal.accept("/someone", "message", TICK)
    journal.close()
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        assert count(await system.ask("/c", TICK)) == 9  # 5 + the 3 redelivered + this
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        assert count(await system.ask("/c", TICK)) == 10  # nothing delivered twice


class Sink(Actor):
    def __init__(self) -> None:
        self.got: list[Any] = []

    def on_message(self, message: Any) -> None:
        self.got.append(message)


async def test_replay_does_not_send_again(tmp_path: Path) -> None:
    grants = {"messaging": {"send": ["/#"], "publish": ["#"]}}
    for run in range(2):
        sink = Sink()
        async with open_system(storage="memory", data_dir=tmp_path) as system:
            await system.spawn(lambda sink=sink: sink, name="sink")  # type: ignore[misc]
            system.subscribe("fixture.#", "/sink")
            await system.spawn_component(
                fixture_path("host"),
                name="h",
                capabilities=grants,
                durability={"journal": True},
            )
            if run == 0:
                for n in range(3):
                    await system.ask("/h", codec.encode(n), sender="/sink")
                # a send and a publish per message
                await until(lambda: len(sink.got) >= 6)  # noqa: B023
            else:  # replayed: the journal answered the calls, nothing went out again
                await stays(lambda: sink.got == [])  # noqa: B023


async def test_a_journal_that_does_not_replay_fails_the_start(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        for _ in range(3):
            await system.ask("/c", TICK)
    path = journal_path(tmp_path, "n", "/c")
    forge_reply(path, seq=2, reply=struct.pack("<I", 7))
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        with pytest.raises(ActorStartError, match="diverged: another reply"):
            await system.spawn_component(manifest, name="c")


def to_per_message_records(path: Path) -> None:
    """Rewrite the journal in the format before ``B`` records: each ask an ``A`` record,
    each batch an ``H`` record whose rows carry the hash chained per message."""
    parts = [MAGIC]
    head = GENESIS
    for record in scan(path.read_bytes()).records:
        if record.kind != "B":
            body = record.value
            encoded = _accept_body(*body) if record.kind == "A" else cbor2.dumps(body)
            parts.append(_frame(record.kind.encode(), encoded))
            continue
        rows = []
        for row in record.value.rows:
            if len(row) > 5:
                parts.append(_frame(b"A", _accept_body(row[0], *row[5:])))
            head = chain(head, row[0], row[1], row[2], row[4])
            rows.append([*row[:5], head])
        parts.append(_frame(b"H", cbor2.dumps(rows)))
    path.write_bytes(b"".join(parts))


async def test_a_journal_written_before_batch_records_replays_and_grows(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        for _ in range(5):
            system.send("/c", TICK)
        for _ in range(3):
            await system.ask("/c", TICK)
    path = journal_path(tmp_path, "n", "/c")
    to_per_message_records(path)
    assert {r.kind for r in scan(path.read_bytes()).records} == {"A", "H"}
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        assert count(await system.ask("/c", TICK)) == 9  # the old records replayed
    assert check_journal(path).ok
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")  # old records, then a B record
        assert count(await system.ask("/c", TICK)) == 10


async def test_a_batch_record_from_another_journal_breaks_the_chain(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(manifest, name="c")
        for _ in range(3):
            await system.ask("/c", TICK)
    path = journal_path(tmp_path, "n", "/c")
    records = scan(path.read_bytes()).records
    last = records[-1].value
    forged = bytes(32) + last.packed  # whole and readable, but not chained to the journal
    data = path.read_bytes()[: records[-1].offset] + _frame(b"B", forged)
    path.write_bytes(data)
    assert check_journal(path).chain_breaks == (3,)
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        with pytest.raises(ActorStartError, match="replay hash does not match"):
            await system.spawn_component(manifest, name="c")


async def test_snapshots_bound_the_journal_and_restore_the_state(tmp_path: Path) -> None:
    durable = {"journal": True, "snapshot-every": 5}
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(fixture_path("durable-counter"), name="c", durability=durable)
        for _ in range(11):
            system.send("/c", TICK)
        assert count(await system.ask("/c", TICK)) == 12
        hash_before = system.replay_hash("/c")
    journal = Journal(journal_path(tmp_path, "n", "/c"))
    snapshot = journal.latest_snapshot()
    assert snapshot is not None and snapshot.seq >= 5
    assert snapshot.state == struct.pack("<I", snapshot.seq)  # the count after that message
    assert all(e.seq > snapshot.seq for e in journal.handled())  # compacted
    journal.close()
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as system:
        await system.spawn_component(fixture_path("durable-counter"), name="c", durability=durable)
        assert system.replay_hash("/c") == hash_before
        assert count(await system.ask("/c", TICK)) == 13


async def test_a_python_component_snapshots_its_registered_state(
    tmp_path: Path, built_components: Path, shared_cache: Path
) -> None:
    durable = {"journal": True, "snapshot-every": 3}
    add = codec.encode({"add": 2})
    for expected in (14, 28):
        async with open_system(
            cache_dir=shared_cache, storage="memory", data_dir=tmp_path, name="n"
        ) as system:
            await system.spawn_component(built_components / "counter", name="c", durability=durable)
            for _ in range(6):
                reply = codec.decode(await system.ask("/c", add))
            reply = codec.decode(await system.ask("/c", add))
            assert reply == {"count": expected}
    journal = Journal(journal_path(tmp_path, "n", "/c"))
    assert journal.latest_snapshot() is not None
    journal.close()


CLOCK = """
import random
import time

from airssys.sdk import Message, on_message


@on_message
def handle(message: Message) -> object:
    if message.value == "monotonic":
        return {"monotonic": time.monotonic()}
    return {"time": time.time(), "random": random.random()}
"""


@pytest.mark.timeout(600)  # builds and compiles its own Python component
async def test_wall_clock_and_randomness_are_replayed_the_monotonic_clock_is_not(
    tmp_path: Path, shared_cache: Path
) -> None:
    from airssys.build import build_component

    source = tmp_path / "clock"
    source.mkdir()
    (source / "app.py").write_text(CLOCK)
    (source / "Component.toml").write_text(
        '[component]\nname = "clock"\nversion = "0.1.0"\nsource = "app.py"\nwasm = "clock.wasm"\n'
    )
    build_component(source, cache_dir=shared_cache)
    data = tmp_path / "data"
    durable = {"journal": True}
    async with open_system(cache_dir=shared_cache, storage="memory", data_dir=data) as system:
        await system.spawn_component(source, name="c", durability=durable)
        first = [codec.decode(await system.ask("/c", codec.encode(n))) for n in range(3)]
        replay_hash = system.replay_hash("/c")
    assert len({reply["time"] for reply in first}) == 3  # the time really moved
    async with open_system(cache_dir=shared_cache, storage="memory", data_dir=data) as system:
        await system.spawn_component(source, name="c", durability=durable)
        assert system.replay_hash("/c") == replay_hash  # same times and numbers replayed
        await system.ask("/c", codec.encode("monotonic"))
    async with open_system(cache_dir=shared_cache, storage="memory", data_dir=data) as system:
        with pytest.raises(ActorStartError, match="diverged: another reply"):
            await system.spawn_component(source, name="c", durability=durable)
