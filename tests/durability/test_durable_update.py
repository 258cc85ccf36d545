"""Hot update of a durable component under load: the version that takes over starts
from exactly the state the serving one reached at the switch (through its snapshot, or
by replaying what was handled since it started), with and without snapshots; a
version that cannot reproduce the recorded replies is refused before it serves."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest

from airssys.actors import open_system
from airssys.errors import UpdateFailed
from tests.conftest import fixture_path
from tests.durability.test_durable import TICK, count

CALLERS = 16


async def load(system: Any, address: str, stop: asyncio.Event, replies: list[int]) -> None:
    while not stop.is_set():
        replies.append(count(await system.ask(address, TICK)))


@pytest.mark.timeout(300)  # without snapshots each update replays the whole journal: a
# loaded machine takes a while (a hang guard; the time is measured in bench_durability)
@pytest.mark.parametrize(
    ("fixture", "durability"),
    [
        ("counter", {"journal": True}),  # no snapshot export: the new version replays
        ("durable-counter", {"journal": True, "snapshot-every": 50}),  # handed over
    ],
)
async def test_updates_and_rollbacks_under_load_lose_nothing_and_apply_nothing_twice(
    tmp_path: Path, fixture: str, durability: dict[str, Any]
) -> None:
    source = fixture_path(fixture)
    replies: list[int] = []
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(source, name="c", durability=durability)
        stop = asyncio.Event()
        callers = [asyncio.create_task(load(system, "/c", stop, replies)) for _ in range(CALLERS)]
        try:
            for _ in range(3):
                seen = len(replies)
                while len(replies) < seen + 200:  # under load between switches
                    await asyncio.sleep(0.005)
                await system.update("/c", source, probation=0)
                seen = len(replies)
                while len(replies) < seen + 200:
                    await asyncio.sleep(0.005)
                await system.rollback("/c")
        finally:
            stop.set()
            await asyncio.gather(*callers)
        final = count(await system.ask("/c", TICK))
    # each acknowledged increment counted once: the replies are 1..n, none twice, none
    # missing, and the count after them all is n + 1
    assert sorted(replies) == list(range(1, len(replies) + 1))
    assert final == len(replies) + 1
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(source, name="c", durability=durability)  # replays
        assert count(await system.ask("/c", TICK)) == final + 1


async def test_a_version_that_answers_otherwise_is_refused_before_it_serves(
    tmp_path: Path,
) -> None:
    # the same counter, counting by two: it cannot reproduce the recorded replies
    doubled = tmp_path / "by-two.wat"
    one = "(global.set $count (i32.add (global.get $count) (i32.const 1)))"
    text = fixture_path("counter").read_text()
    assert one in text
    doubled.write_text(text.replace(one, one.replace("(i32.const 1)", "(i32.const 2)")))
    async with open_system(storage="memory", data_dir=tmp_path) as system:
        await system.spawn_component(
            fixture_path("counter"), name="c", durability={"journal": True}
        )
        for n in range(1, 6):
            assert count(await system.ask("/c", TICK)) == n
        with pytest.raises(UpdateFailed, match="diverged"):
            await system.update("/c", doubled, probation=0)
        assert count(await system.ask("/c", TICK)) == 6  # the serving version is unharmed
        assert struct.pack("<I", 7) == await system.ask("/c", TICK)
