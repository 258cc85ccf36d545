"""A host function's failure stays with its own instance (issue 8, item 3).

wasmtime-py parks an exception raised by a host function in one process-wide
slot and re-raises it after the next trap anywhere. airssys's host functions
never let an exception reach that slot, so a trap in an unrelated instance, on
any thread, is reported as its own.
"""

from __future__ import annotations

import contextlib
import threading

from wasmtime.component import _enter

from airssys.errors import ComponentTrap, ExecutionError
from airssys.runtime import Runtime
from tests.conftest import fixture_path


class FlakyAddressHost:
    """Answers self_address once (at instantiation), then raises: a broken host."""

    def __init__(self) -> None:
        self.asked = 0

    def self_address(self) -> str:
        self.asked += 1
        if self.asked > 1:
            raise RuntimeError("host A is broken")
        return "test/a"

    def send(self, to: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        return "corr"


class PanickingHost(FlakyAddressHost):
    """``send`` raises something that is not an Exception."""

    def self_address(self) -> str:
        return "test/panic"

    def send(self, to: str, payload: bytes) -> None:
        raise HostPanic("send exploded")


class HostPanic(BaseException):
    pass


def test_a_failing_host_never_leaks_into_another_threads_trap(runtime: Runtime) -> None:
    host_component = runtime.load(fixture_path("host"))
    trap_component = runtime.load(fixture_path("trap"))
    errors_b: list[BaseException] = []
    stop = threading.Event()

    def run_a() -> None:
        for _ in range(200):
            with runtime.instantiate(host_component, host=FlakyAddressHost()) as a:
                with contextlib.suppress(ExecutionError):
                    a.handle_message_raw("x", b"\x55hi")
        stop.set()

    def run_b() -> None:
        while not stop.is_set() or len(errors_b) < 50:
            # the public call path is the one that consults wasmtime-py's slot
            with runtime.instantiate(trap_component, fast_path=False) as b:
                try:
                    b.handle_message_raw("x", b"\x55poison")
                except BaseException as exc:
                    errors_b.append(exc)
                assert not b.alive

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors_b
    assert all(isinstance(exc, ComponentTrap) for exc in errors_b), {
        type(exc).__name__ for exc in errors_b
    }
    assert all("host A is broken" not in str(exc) for exc in errors_b)
    assert _enter.LAST_EXCEPTION is None


def test_self_address_is_answered_from_the_instance_not_the_host(runtime: Runtime) -> None:
    host = FlakyAddressHost()
    with runtime.instantiate(runtime.load(fixture_path("host")), host=host) as instance:
        instance.handle_message_raw("x", b"\x55hi")
        instance.handle_message_raw("x", b"\x55again")
        assert instance.alive
    assert host.asked == 1


def test_a_host_function_raising_a_base_exception_traps_only_its_instance(
    runtime: Runtime,
) -> None:
    component = runtime.load(fixture_path("host"))
    with runtime.instantiate(component, host=PanickingHost()) as instance:
        try:
            instance.handle_message_raw("x", b"\x55hi")
        except ComponentTrap as exc:
            assert "messaging.send" in str(exc)
            assert "HostPanic" in str(exc)
        else:
            raise AssertionError("the panicking host function did not trap its instance")
        assert not instance.alive
    assert _enter.LAST_EXCEPTION is None
    with runtime.instantiate(component) as other:  # a neighbour is untouched
        assert other.alive
