"""Fuel, deadlines, memory caps and traps: each ends as its own typed error."""

from __future__ import annotations

import struct

import pytest

from airssys.errors import (
    ComponentTrap,
    DeadlineExceeded,
    FuelExhausted,
    HandlerError,
    InstanceClosed,
    InstanceDead,
    MemoryLimitExceeded,
    PayloadTooLarge,
)
from airssys.runtime import Limits, Runtime
from tests.conftest import fixture_path

MiB = 1024 * 1024


def test_infinite_loop_is_stopped_by_its_deadline(runtime: Runtime) -> None:
    spin = runtime.load_file(fixture_path("spin"))
    limits = Limits(fuel_per_message=10**15, timeout_ms=30)
    with runtime.instantiate(spin, limits=limits) as instance:
        with pytest.raises(DeadlineExceeded, match="30 ms deadline") as info:
            instance.handle_message("t", b"")
        assert isinstance(info.value, TimeoutError)
        assert not instance.alive


def test_fuel_exhaustion_is_reported(runtime: Runtime) -> None:
    fuel = runtime.load_file(fixture_path("fuel"))
    with runtime.instantiate(fuel, limits=Limits(fuel_per_message=50_000)) as instance:
        assert instance.handle_message("t", struct.pack("<I", 100)) == struct.pack("<I", 100)
        small = instance.fuel_used
        assert 0 < small < 50_000
        with pytest.raises(FuelExhausted, match="50000 units"):
            instance.handle_message("t", struct.pack("<I", 10**9))


def test_fuel_used_grows_with_work(runtime: Runtime) -> None:
    fuel = runtime.load_file(fixture_path("fuel"))
    with runtime.instantiate(fuel) as instance:
        instance.handle_message("t", struct.pack("<I", 10))
        few = instance.fuel_used
        instance.handle_message("t", struct.pack("<I", 10_000))
        many = instance.fuel_used
    assert many > few * 100
    assert instance.fuel_used_total == few + many


def test_fuel_is_refilled_before_each_message(runtime: Runtime) -> None:
    fuel = runtime.load_file(fixture_path("fuel"))
    with runtime.instantiate(fuel, limits=Limits(fuel_per_message=200_000)) as instance:
        for _ in range(20):  # 20 x ~60k units would exhaust a budget that was not refilled
            instance.handle_message("t", struct.pack("<I", 10_000))
        assert instance.alive


@pytest.mark.parametrize(("cap_mib", "pages"), [(2, 32), (4, 64)])
def test_memory_cap_holds(runtime: Runtime, cap_mib: int, pages: int) -> None:
    hog = runtime.load_file(fixture_path("hog"))
    with runtime.instantiate(hog, limits=Limits(memory=cap_mib * MiB)) as instance:
        reply = instance.handle_message("t", b"")
        assert reply is not None
        assert struct.unpack("<I", reply)[0] == pages
        assert instance.alive  # growth refused, not a trap


def test_instantiation_over_the_memory_cap_is_refused(runtime: Runtime) -> None:
    hog = runtime.load_file(fixture_path("hog"))  # starts with 1 MiB
    with pytest.raises(MemoryLimitExceeded, match="cap of 524288 bytes during instantiation"):
        runtime.instantiate(hog, limits=Limits(memory=512 * 1024))
    assert runtime.live_instances == 0


def test_allocator_abort_after_refusal_is_a_trap(runtime: Runtime) -> None:
    hog = runtime.load_file(fixture_path("hog"))
    with runtime.instantiate(hog, limits=Limits(memory=2 * MiB)) as instance:
        with pytest.raises(ComponentTrap, match="unreachable"):
            instance.handle_message("t", b"abort")


def test_trap_kills_only_that_instance(runtime: Runtime) -> None:
    trap = runtime.load_file(fixture_path("trap"))
    with runtime.instantiate(trap) as victim, runtime.instantiate(trap) as bystander:
        assert victim.handle_message("t", b"hi") == b"hi"
        with pytest.raises(ComponentTrap, match="'trap' trapped during handle: wasm `unreachable`"):
            victim.handle_message("t", b"poison pill")
        assert not victim.alive
        assert isinstance(victim.death, ComponentTrap)
        with pytest.raises(InstanceDead, match="instantiate a fresh one"):
            victim.handle_message("t", b"hi")
        assert bystander.handle_message("t", b"still here") == b"still here"


def test_fresh_instance_after_a_trap_starts_from_scratch(runtime: Runtime) -> None:
    counter = runtime.load_file(fixture_path("counter"))
    with runtime.instantiate(counter) as first:
        for _ in range(3):
            first.handle_message("t", b"")
    with runtime.instantiate(counter) as second:
        assert second.handle_message("t", b"") == struct.pack("<I", 1)


def test_state_is_kept_across_messages(runtime: Runtime) -> None:
    counter = runtime.load_file(fixture_path("counter"))
    with runtime.instantiate(counter) as instance:
        replies = [instance.handle_message("t", b"") for _ in range(5)]
    assert replies == [struct.pack("<I", n) for n in range(1, 6)]


def test_payload_too_large_is_refused_and_the_instance_lives(runtime: Runtime) -> None:
    echo = runtime.load_file(fixture_path("echo"))
    with runtime.instantiate(echo, limits=Limits(max_payload=16)) as instance:
        with pytest.raises(PayloadTooLarge, match="17 bytes exceeds the max-payload of 16"):
            instance.handle_message("t", b"x" * 17)
        assert instance.handle_message("t", b"x" * 16) == b"x" * 16


def test_handler_err_keeps_the_instance_alive(runtime: Runtime) -> None:
    echo = runtime.load_file(fixture_path("echo"))
    with runtime.instantiate(echo) as instance:
        with pytest.raises(HandlerError, match="err:nope"):
            instance.handle_message("err:nope", b"")
        assert instance.alive
        assert instance.handle_message("none", b"x") is None


def test_closed_instance_refuses_calls(runtime: Runtime) -> None:
    echo = runtime.load_file(fixture_path("echo"))
    instance = runtime.instantiate(echo)
    instance.close()
    instance.close()  # idempotent
    with pytest.raises(InstanceClosed):
        instance.handle_message("t", b"")
    assert runtime.live_instances == 0


def test_closing_the_runtime_closes_its_instances() -> None:
    with Runtime(disk_cache=False) as rt:
        instance = rt.instantiate(rt.load_file(fixture_path("echo")))
    assert instance.closed


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="memory must be a positive integer"):
        Limits(memory=0)
    with pytest.raises(ValueError, match="timeout_ms must be positive"):
        Limits(timeout_ms=-1)
