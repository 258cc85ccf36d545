"""wasi:keyvalue from a real Python component (tests/services/probe), end to end."""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path
from typing import Any

import pytest

from airssys import codec
from airssys.actors import ActorState, open_system
from airssys.errors import ComponentTrap, HandlerError
from airssys.runtime import Limits, Runtime, _keyvalue
from tests.actors.helpers import settle
from tests.services.conftest import BUILD_TIMEOUT, ServicesHost, ask

pytestmark = BUILD_TIMEOUT

BACKENDS = ["sqlite", "lmdb", "memory"]


def grants(*buckets: str, **more: Any) -> dict[str, Any]:
    return {"storage": {"buckets": list(buckets or ["default"]), **more}}


async def test_a_component_stores_and_reads_values(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p")
        assert await ask(ref, op="set", key="greeting", value="héllo ✓") == {"ok": True}
        assert await ask(ref, op="get", key="greeting") == {"value": "héllo ✓"}
        assert await ask(ref, op="get", key="absent") == {"value": None}
        assert await ask(ref, op="exists", key="greeting") == {"exists": True}
        assert await ask(ref, op="exists", key="absent") == {"exists": False}
        assert await ask(ref, op="incr", key="visits", delta=5) == {"value": 5}
        assert await ask(ref, op="incr", key="visits", delta=-7) == {"value": -2}
        assert await ask(ref, op="get", key="visits") == {"value": "-2"}
        await ask(ref, op="set_many", items={"u:1": "a", "u:2": "b", "v:1": "c"})
        assert await ask(ref, op="get_many", keys=["u:2", "nope", "v:1"]) == {
            "u:2": "b",
            "nope": None,
            "v:1": "c",
        }
        assert await ask(ref, op="keys") == {"keys": ["greeting", "u:1", "u:2", "v:1", "visits"]}
        await ask(ref, op="delete_many", keys=["u:1", "v:1", "never"])
        await ask(ref, op="delete", key="greeting")
        await ask(ref, op="delete", key="greeting")  # absent: nothing to do
        assert await ask(ref, op="keys") == {"keys": ["u:2", "visits"]}
        # the data is where the host says it is
        bucket = system.storage.get(f"{ref.address}/default", b"u:2")
        assert bucket == b"b"


async def test_compare_and_swap(probe: Path, shared_cache: Path, tmp_path: Path) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p")
        assert await ask(ref, op="cas", key="c", expected=None, value="1") == {"swapped": True}
        assert await ask(ref, op="cas", key="c", expected=None, value="2") == {"swapped": False}
        assert await ask(ref, op="cas", key="c", expected="1", value="2") == {"swapped": True}
        assert await ask(ref, op="get", key="c") == {"value": "2"}
        # the value changes between cas.new and swap: cas-failed, with a fresh handle
        assert await ask(ref, op="cas_race", key="c", value="3", meddle="9") == {
            "swapped": False,
            "fresh": "9",
        }
        assert await ask(ref, op="get", key="c") == {"value": "9"}


async def test_state_survives_a_restart_and_a_new_system(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        await system.spawn_supervisor([system.component_spec("p", probe)], name="sup")
        ref = system.ref("/sup/p")
        await ask(ref, op="set", key="kept", value="across restarts")
        with pytest.raises(ComponentTrap, match="asked to crash"):
            await ask(ref, op="crash")
        await settle(lambda: ref.state is ActorState.RUNNING and ref.restarts == 1)
        assert await ask(ref, op="get", key="kept") == {"value": "across restarts"}
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        await system.spawn_supervisor([system.component_spec("p", probe)], name="sup")
        assert await ask(system.ref("/sup/p"), op="get", key="kept") == {"value": "across restarts"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_components_opening_default_see_different_data(
    probe: Path, shared_cache: Path, tmp_path: Path, backend: str
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path, storage=backend) as system:
        one = await system.spawn_component(probe, name="one")
        two = await system.spawn_component(probe, name="two")
        await ask(one, op="set", key="k", value="one's")
        assert await ask(two, op="get", key="k") == {"value": None}
        await ask(two, op="set", key="k", value="two's")
        assert await ask(one, op="get", key="k") == {"value": "one's"}
        assert await ask(two, op="keys") == {"keys": ["k"]}


async def test_a_write_past_the_quota_fails_naming_it_and_writes_nothing(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", capabilities=grants(quota=1000, keys=3))
        await ask(ref, op="set", key="small", value="x")
        answer = await ask(ref, op="set", key="big", value="x" * 2000)
        assert answer["type"] == "StorageError"
        assert "quota" in answer["error"] and "1000 bytes" in answer["error"]
        assert await ask(ref, op="exists", key="big") == {"exists": False}
        # a batch past the key quota: none of it is stored
        answer = await ask(ref, op="set_many", items={"a": "1", "b": "2", "c": "3"})
        assert "keys" in answer["error"] and "quota" in answer["error"]
        assert await ask(ref, op="keys") == {"keys": ["small"]}
        # strict: the SDK's exception fails the message with the same text
        with pytest.raises(HandlerError, match="quota"):
            await ask(ref, op="set", key="big", value="x" * 2000, strict=True)


async def test_an_ungranted_bucket_is_denied_and_audited(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", capabilities=grants("default"))
        answer = await ask(ref, op="open", bucket="secret")
        assert answer["type"] == "AccessDenied"
        assert "storage bucket 'secret' is not granted" in answer["error"]
        assert "storage = { buckets = ['secret'] }" in answer["error"]
        [record] = system.audit.query(decision="deny")
        assert (record.component, record.kind, record.resource) == ("/p", "storage", "secret")
        assert "granted: default" in record.reason
        assert await ask(ref, op="set", key="k", value="v") == {"ok": True}  # still works


async def test_no_storage_grant_at_all(probe: Path, shared_cache: Path, tmp_path: Path) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", capabilities={})
        answer = await ask(ref, op="get", key="k")
        assert answer["type"] == "AccessDenied"
        assert "bucket 'default' is not granted" in answer["error"]
        assert len(system.audit.query(decision="deny")) == 1


async def test_scan_by_prefix_pages_with_a_cursor(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p")
        users = {f"user:{i:05d}": str(i) for i in range(1205)}
        await ask(ref, op="set_many", items={**users, "other": "x", "userz": "y", "use": "z"})
        first = await ask(ref, op="page", prefix="user:")
        assert first["keys"] == sorted(users)[:1000] and first["cursor"] == "user:00999"
        second = await ask(ref, op="page", prefix="user:", cursor=first["cursor"])
        assert second["keys"] == sorted(users)[1000:] and second["cursor"] is None
        every = await ask(ref, op="keys", prefix="user:")
        assert every["keys"] == sorted(users)
        # list-keys pages the same way
        page = await ask(ref, op="page")
        assert len(page["keys"]) == 1000 and page["cursor"] is not None


async def test_invalid_names_and_keys_name_the_rule(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", capabilities=grants("*"))
        answer = await ask(ref, op="open", bucket="a/b")
        assert answer["type"] == "StorageError" and "no '/'" in answer["error"]
        answer = await ask(ref, op="set", key="k" * 600, value="v")
        assert "at most 500 bytes" in answer["error"]
        await ask(ref, op="set", key="text", value="not a number")
        answer = await ask(ref, op="incr", key="text")
        assert answer["type"] == "StorageError" and "text" in answer["error"]


async def test_handles_are_released(probe: Path, shared_cache: Path, tmp_path: Path) -> None:
    """Dropped buckets leave the instance's table; too many open ones are refused."""
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", capabilities=grants("*"))
        for i in range(_keyvalue.MAX_HANDLES + 10):  # opened and closed: never too many
            await ask(ref, op="open", bucket=f"b{i % 7}")
            assert await ask(ref, op="close", bucket=f"b{i % 7}") == {"closed": True}
        answer = await ask(ref, op="hoard", n=_keyvalue.MAX_HANDLES + 1)
        assert "too many open key-value handles" in answer["error"]
        assert await ask(ref, op="hoard", n=0) == {"held": 0}  # released again
        assert await ask(ref, op="set", key="k", value="v") == {"ok": True}


def test_a_detached_instance_gets_err_naming_why(probe: Path, shared_cache: Path) -> None:
    with Runtime(cache_dir=shared_cache) as runtime:
        component = runtime.load(probe.parent / "probe.wasm")
        with runtime.instantiate(component) as instance:
            reply = instance.handle_message("me", codec.encode({"op": "get", "key": "k"}, "json"))
            answer = codec.decode(reply or b"")
            assert answer["type"] == "StorageError"
            assert "runs outside an actor system" in answer["error"]
            assert _keyvalue.handles_of(instance, create=False) is None  # nothing opened


def test_closing_an_instance_releases_its_handles(probe: Path, shared_cache: Path) -> None:
    with Runtime(cache_dir=shared_cache) as runtime:
        component = runtime.load(probe.parent / "probe.wasm")
        instance = runtime.instantiate(component, host=ServicesHost())
        instance.handle_message("me", codec.encode({"op": "set", "key": "k", "value": "v"}, "json"))
        handles = _keyvalue.handles_of(instance, create=False)
        assert handles is not None and len(handles.buckets) == 1
        instance.close()
        assert not handles.buckets  # released with the Store
        gone = weakref.ref(instance)
        del instance
        gc.collect()
        assert gone() is None  # the table never keeps its instance alive


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_fifty_thousand_storage_calls_keep_memory_flat(probe: Path, shared_cache: Path) -> None:
    """get (a list<u8> written), page (a record of strings), incr (s64), exists and a
    denial, 10k times each: a leaked value or handle would show as megabytes. (No
    sets: componentize-py 0.25.1 leaks a list<u8> argument in the guest's memory.)"""
    with Runtime(cache_dir=shared_cache) as runtime:
        component = runtime.load(probe.parent / "probe.wasm")
        with runtime.instantiate(
            component, host=ServicesHost(), limits=Limits(timeout_ms=60_000)
        ) as instance:

            def repeat(times: int, **op: Any) -> None:
                payload = codec.encode({"op": "repeat", "n": times, "what": op}, "json")
                instance.handle_message("me", payload)

            calls: list[dict[str, Any]] = [
                {"op": "bench", "kind": "get", "n": 1, "keyspace": 50},
                {"op": "page", "prefix": "key-"},
                {"op": "incr", "key": "n"},
                {"op": "exists", "key": "key-000001"},
                {"op": "open", "bucket": "a/b"},
            ]
            repeat(1, op="bench", kind="set", n=50, keyspace=50, fill=True)
            for call in calls:
                repeat(1_000, **call)
            before = _rss()
            for call in calls:
                for _ in range(10):  # 1,000 at a time: well within a message's fuel
                    repeat(1_000, **call)
            grown = _rss() - before
    assert grown < 8 << 20, f"RSS grew by {grown} bytes over 50k storage calls"
