"""A durable component's storage writes commit with its message: a message that runs
past its deadline, or fails with an error, leaves none of its writes; one that
succeeds leaves all of them; and replay does not write them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys.actors import open_system
from airssys.errors import ExecutionError, HandlerError
from airssys.runtime import Limits
from tests.services.conftest import BUILD_TIMEOUT, ask
from tests.waiting import until

pytestmark = BUILD_TIMEOUT
DURABLE = {"journal": True}


async def test_a_message_past_its_deadline_leaves_none_of_its_writes(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [system.component_spec("p", probe, durability=DURABLE, limits=Limits(timeout_ms=300))],
            name="app",
        )
        p = system.ref("/app/p")
        # far more increments than fit in 300 ms: killed at its deadline part way
        with pytest.raises(ExecutionError):
            await ask(p, op="repeat", n=10_000_000, what={"op": "incr", "key": "n"})
        assert system.storage.get("/app/p/default", b"n") is None  # not one of them
        # a message that succeeds stores all of its writes, its reads seeing them first
        await until(lambda: p.state.value == "running")
        assert await ask(p, op="repeat", n=50, what={"op": "incr", "key": "n"}) == {"value": 50}
        assert system.storage.get("/app/p/default", b"n") == b"50"
        # an error (strict: the SDK's exception fails the message) leaves nothing either
        with pytest.raises(HandlerError):
            await ask(p, op="set", key="big", value="x", bucket="not granted", strict=True)
        assert await ask(p, op="get", key="n") == {"value": "50"}
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [system.component_spec("p", probe, durability=DURABLE)], name="app"
        )
        # replayed (the journal answers its storage calls): nothing written twice
        assert system.storage.get("/app/p/default", b"n") == b"50"
        assert await ask(system.ref("/app/p"), op="incr", key="n") == {"value": 51}


async def test_a_non_durable_component_writes_at_once(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", limits=Limits(timeout_ms=300))
        with pytest.raises(ExecutionError):
            await ask(ref, op="repeat", n=10_000_000, what={"op": "incr", "key": "n"})
        stored = system.storage.get("/p/default", b"n")
        assert stored is not None and int(stored) > 0  # what ran before the deadline stays
