"""Hot update, blue-green: no message lost, order kept, probation and rollback."""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from airssys import codec
from airssys.actors import Actor, ActorState, UpdateFailed, open_system
from airssys.errors import ActorDeadError, ComponentTrap
from tests.conftest import fixture_path

POISON = codec.encode(b"poison", "raw")
HELLO = codec.encode(b"hello", "raw")


def manifest(tmp_path: Path, fixture: str, version: str) -> Path:
    path = tmp_path / f"{fixture}-{version}.toml"
    path.write_text(
        f'[component]\nname = "svc"\nversion = "{version}"\nwasm = "{fixture_path(fixture)}"\n'
    )
    return path


def count(reply: bytes) -> int:
    assert len(reply) == 4, reply
    return int(struct.unpack("<I", reply)[0])


async def running(system: object, address: str) -> None:
    ref = system.ref(address)  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        while ref.state is not ActorState.RUNNING:
            await asyncio.sleep(0.005)


async def test_an_update_under_load_loses_nothing_and_keeps_each_callers_order(
    tmp_path: Path,
) -> None:
    callers, each = 16, 150
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_supervisor(
            [system.component_spec("c", manifest(tmp_path, "counter", "1.0.0"))], name="app"
        )
        replies: dict[int, list[int]] = {i: [] for i in range(callers)}
        started = asyncio.Event()

        async def caller(i: int) -> None:
            for _ in range(each):
                replies[i].append(count(await system.ask("/app/c", HELLO, sender=f"/c{i}")))
                if sum(map(len, replies.values())) > callers * each // 4:
                    started.set()

        load = [asyncio.create_task(caller(i)) for i in range(callers)]
        await started.wait()
        report = await system.update("/app/c", manifest(tmp_path, "counter", "2.0.0"))
        await asyncio.gather(*load)
        assert (report.old.version, report.new.version) == ("1.0.0", "2.0.0")
        assert [v.version for v in system.versions("/app/c")] == ["1.0.0", "2.0.0"]
    # every message counted by exactly one version: each counter's values run 1..n
    everything = Counter(value for got in replies.values() for value in got)
    assert sum(everything.values()) == callers * each
    both = [v for v, n in everything.items() if n == 2]
    assert set(everything.values()) <= {1, 2}
    low, high = len(both), max(everything)
    assert sorted(both) == list(range(1, low + 1))
    assert sorted(v for v, n in everything.items() if n == 1) == list(range(low + 1, high + 1))
    assert low + high == callers * each  # the old version's total + the new one's
    assert low > 0  # the switch happened under load, not before or after it
    for got in replies.values():  # each caller saw one switch at most: old, then new
        descents = sum(1 for a, b in pairwise(got) if b < a)
        assert descents <= 1


async def test_tells_queued_behind_the_switch_go_to_the_new_version_in_order(
    tmp_path: Path,
) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_component(
            manifest(tmp_path, "counter", "1.0.0"), name="c", mailbox=10_000
        )
        for _ in range(3000):
            system.send("/c", HELLO)
        await system.update("/c", manifest(tmp_path, "counter", "2.0.0"))
        for _ in range(1000):
            system.send("/c", HELLO)
        last = count(await system.ask("/c", HELLO))
        processed = system.ref("/c").mailbox.processed
    # 4001 messages: the old version handled some, the new one the rest and the ask
    assert processed == 4001
    assert 1001 <= last <= 4001


async def test_a_version_that_fails_to_load_or_start_leaves_the_old_one_serving(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[component]\nname = "svc"\nversion = "9.0.0"\nwasm = "missing.wasm"\n')
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_component(manifest(tmp_path, "counter", "1.0.0"), name="c")
        assert count(await system.ask("/c", HELLO)) == 1
        with pytest.raises(UpdateFailed, match="was refused"):
            await system.update("/c", bad)
        assert count(await system.ask("/c", HELLO)) == 2  # same instance, state kept
        hog = manifest(tmp_path, "hog", "1.1.0")  # starts with 1 MiB of memory
        hog.write_text(hog.read_text() + '\n[limits]\nmemory = "512KiB"\n')
        with pytest.raises(UpdateFailed, match="failed to start"):
            await system.update("/c", hog)
        assert count(await system.ask("/c", HELLO)) == 3
        assert [v.version for v in system.versions("/c")] == ["1.0.0"]


async def test_a_crash_on_probation_rolls_back_to_the_previous_version(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_supervisor(
            [system.component_spec("c", manifest(tmp_path, "counter", "1.0.0"))],
            name="app",
            intensity=10,
        )
        rolled_back: list[tuple[str, str, str]] = []
        system.rollback_listeners.append(lambda *args: rolled_back.append(args))
        await system.update("/app/c", manifest(tmp_path, "trap", "2.0.0"), probation=60)
        assert await system.ask("/app/c", HELLO) == HELLO  # the trap fixture echoes
        with pytest.raises(ComponentTrap):
            await system.ask("/app/c", POISON)
        await running(system, "/app/c")
        assert count(await system.ask("/app/c", HELLO)) == 1  # the counter, fresh
        assert [v.version for v in system.versions("/app/c")] == ["1.0.0"]
        assert rolled_back == [("/app/c", "2.0.0", "1.0.0")]


async def test_a_top_level_component_is_rolled_back_too(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_component(manifest(tmp_path, "counter", "1.0.0"), name="c")
        await system.update("/c", manifest(tmp_path, "trap", "2.0.0"), probation=60)
        with pytest.raises(ComponentTrap):
            await system.ask("/c", POISON)
        await running(system, "/c")
        assert count(await system.ask("/c", HELLO)) == 1


async def test_after_probation_a_crash_is_an_ordinary_restart(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_supervisor(
            [system.component_spec("c", manifest(tmp_path, "counter", "1.0.0"))], name="app"
        )
        await system.update("/app/c", manifest(tmp_path, "trap", "2.0.0"), probation=0)
        with pytest.raises(ComponentTrap):
            await system.ask("/app/c", POISON)
        await running(system, "/app/c")
        assert await system.ask("/app/c", HELLO) == HELLO  # still the new version
        assert [v.version for v in system.versions("/app/c")] == ["1.0.0", "2.0.0"]


async def test_rollback_on_demand_and_restart_child_keep_the_version(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        sup = await system.spawn_supervisor(
            [system.component_spec("c", manifest(tmp_path, "counter", "1.0.0"))], name="app"
        )
        await system.update("/app/c", manifest(tmp_path, "trap", "2.0.0"))
        await sup.terminate_child("c")
        await sup.restart_child("c")  # the spec was updated: still version 2
        assert await system.ask("/app/c", HELLO) == HELLO
        report = await system.rollback("/app/c")
        assert (report.old.version, report.new.version) == ("2.0.0", "1.0.0")
        assert count(await system.ask("/app/c", HELLO)) == 1
        assert [v.version for v in system.versions("/app/c")] == ["1.0.0"]
        with pytest.raises(UpdateFailed, match="no previous version"):
            await system.rollback("/app/c")


async def test_only_running_components_are_updated(tmp_path: Path) -> None:
    class Plain(Actor):
        pass

    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn(Plain, name="plain")
        with pytest.raises(UpdateFailed, match="not a component"):
            await system.update("/plain", manifest(tmp_path, "counter", "2.0.0"))
        with pytest.raises(ActorDeadError, match="no actor"):
            await system.update("/nobody", manifest(tmp_path, "counter", "2.0.0"))
        await system.spawn_component(manifest(tmp_path, "counter", "1.0.0"), name="c")
        with pytest.raises(ValueError, match="probation"):
            await system.update("/c", manifest(tmp_path, "counter", "2.0.0"), probation=-1)


async def test_the_history_keeps_the_last_ten_versions(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_component(manifest(tmp_path, "counter", "1.0.0"), name="c")
        for minor in range(1, 13):
            await system.update("/c", manifest(tmp_path, "counter", f"1.{minor}.0"))
        versions = [v.version for v in system.versions("/c")]
    assert versions == [f"1.{minor}.0" for minor in range(3, 13)]
