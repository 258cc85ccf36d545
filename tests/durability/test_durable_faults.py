"""Durable components at their worst case, in a system: messages that arrive while a
component replays, a journal write that fails after a batch was handled, a damaged
journal refused and then repaired, a second system on the same journal."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from airssys.actors import _component, open_system
from airssys.durability import (
    Durable,
    Journal,
    JournalCorrupt,
    JournalError,
    JournalLocked,
    check_journal,
    journal_path,
    repair_journal,
)
from airssys.durability._journal import scan
from airssys.errors import ActorStartError, DataDirLocked
from airssys.manifest import DurabilitySpec
from tests.durability.test_durable import TICK, count, counter_manifest
from tests.waiting import until


async def test_messages_sent_while_it_replays_are_journaled_before_they_are_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaying, release = threading.Event(), threading.Event()
    replay = Durable.replay

    def slow_replay(self: Durable, instance: Any, since: Any = None) -> Any:
        replaying.set()
        release.wait(60)
        return replay(self, instance, since)

    monkeypatch.setattr(Durable, "replay", slow_replay)
    monkeypatch.setattr(_component, "_INSTANTIATE_COST", {})  # instantiate on a thread
    path = journal_path(tmp_path, "airssys", "/c")
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        spawning = asyncio.create_task(system.spawn_component(counter_manifest(tmp_path), name="c"))
        try:
            await until(replaying.is_set)
            for _ in range(5):
                system.send("/c", TICK)  # acknowledged: it returned
            # on disk before the replay is over: a kill now would lose none of them
            assert check_journal(path).pending == (1, 2, 3, 4, 5)
        finally:
            release.set()
        await spawning
        assert count(await system.ask("/c", TICK)) == 6


async def test_a_batch_whose_record_cannot_be_written_waits_for_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = Journal.record
    failures = [JournalError("cannot write to the journal: No space left on device")] * 3

    def failing_record(self: Journal, handled: Any) -> bytes:
        if failures:
            raise failures.pop()
        return record(self, handled)

    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [system.component_spec("c", counter_manifest(tmp_path))], name="app"
        )
        monkeypatch.setattr(Journal, "record", failing_record)
        # handled at once; its reply is held until its record is written (3 tries later)
        assert count(await system.ask("/app/c", TICK)) == 1
        assert failures == []
        assert system.ref("/app/c").restarts == 0  # no restart loop on a full disk
        assert count(await system.ask("/app/c", TICK)) == 2
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [system.component_spec("c", counter_manifest(tmp_path))], name="app"
        )
        assert count(await system.ask("/app/c", TICK)) == 3  # each recorded once


async def test_a_damaged_journal_is_refused_then_repaired_and_replayed(tmp_path: Path) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(manifest, name="c")
        for n in range(1, 31):
            assert count(await system.ask("/c", TICK)) == n
    path = journal_path(tmp_path, "airssys", "/c")
    record = next(  # message 10 (an ask: accepted in the record of its batch)
        r for r in scan(path.read_bytes()).records if r.kind == "B" and r.value.rows[0][0] == 10
    )
    data = bytearray(path.read_bytes())
    data[record.offset + 8] ^= 0xFF
    path.write_bytes(bytes(data))

    async with open_system(storage="memory", data_dir=tmp_path) as system:
        with pytest.raises(ActorStartError) as raised:
            await system.spawn_component(manifest, name="c")
        assert isinstance(raised.value.__cause__, JournalCorrupt)
        assert f"offset {record.offset}" in str(raised.value.__cause__)
        assert system.lookup("/c") is None

    report = repair_journal(path)
    assert report.lost == (10,) and report.redelivered == ()
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(manifest, name="c")  # no ReplayDivergence
        # 29 of the 30 counted messages are left (the replies after 10 replay differently)
        assert count(await system.ask("/c", TICK)) == 30
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(manifest, name="c")  # and again, the same
        assert count(await system.ask("/c", TICK)) == 31


async def test_a_second_system_of_the_same_name_and_data_directory_is_refused(
    tmp_path: Path,
) -> None:
    manifest = counter_manifest(tmp_path)
    async with open_system(storage="memory", data_dir=tmp_path, name="n") as first:
        await first.spawn_component(manifest, name="c")
        await first.ask("/c", TICK)
        async with open_system(storage="memory", data_dir=tmp_path, name="n") as second:
            with pytest.raises(ActorStartError) as raised:
                await second.spawn_component(manifest, name="c")
            assert isinstance(raised.value.__cause__, DataDirLocked)
            assert f"pid {os.getpid()}" in str(raised.value.__cause__)
        # another name in the same data directory has journals of its own
        async with open_system(storage="memory", data_dir=tmp_path, name="m") as other:
            await other.spawn_component(manifest, name="c")
            assert count(await other.ask("/c", TICK)) == 1
            # a journal shared by name (a cluster's) is locked on its own
            spec = DurabilitySpec(journal=True)
            first.open_journal("/shared", spec, scope="cluster")
            with pytest.raises(JournalLocked, match="being written by another system"):
                other.open_journal("/shared", spec, scope="cluster")
        assert count(await first.ask("/c", TICK)) == 2  # the first went on serving
