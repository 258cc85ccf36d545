"""airssys's host-call trampoline against wasmtime-py's ``add_func``, call for call.

Two runtimes run the same component (components/fixtures/host.wat: on every
message it calls log, self-address, log, send, publish and request): one with the
imports registered through :mod:`airssys.runtime._hostcall`, one through
wasmtime-py's ``LinkerInstance.add_func``. Both must make the same host-side
calls with the same arguments and hand the guest the same answers.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Iterator

import pytest
import wasmtime
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wasmtime import component as wc
from wasmtime.component import _enter

from airssys.errors import ComponentTrap, HandlerError
from airssys.runtime import ComponentInstance, Limits, Runtime, _host, _hostcall
from airssys.runtime import _runtime as runtime_module
from airssys.runtime._world import MESSAGING
from tests.conftest import fixture_path

KiB = 1024
MiB = 1024 * KiB

Call = tuple[object, ...]


class RecordingHost:
    """Records every messaging call; ``fail`` names one that raises instead."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls
        self.fail: str | None = None
        self.requests = 0

    def self_address(self) -> str:
        return "test/recorder ✓"

    def _call(self, what: str, *args: object) -> None:
        self.calls.append((what, *args))
        if self.fail == what:
            raise LookupError(f"no route for {what} ✗")

    def send(self, to: str, payload: bytes) -> None:
        self._call("send", to, payload)

    def publish(self, topic: str, payload: bytes) -> None:
        self._call("publish", topic, payload)

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._call("request", to, payload, timeout_ms)
        self.requests += 1
        return f"corr-{self.requests} ✓"


class Side:
    """One instance of host.wat whose host calls (logs included) land in ``calls``."""

    def __init__(self, runtime: Runtime, limits: Limits | None = None) -> None:
        self.calls: list[Call] = []
        self.host = RecordingHost(self.calls)
        component = runtime.load_file(fixture_path("host"))
        self.instance = runtime.instantiate(component, host=self.host, limits=limits)

        def guest_log(level: str, message: str) -> None:
            self.calls.append(("log", level, message))

        self.instance.guest_log = guest_log  # type: ignore[method-assign]

    def run(
        self, sender: str, payload: bytes, fail: str | None = None
    ) -> tuple[object, list[Call]]:
        self.calls.clear()
        self.host.fail = fail
        answer: object = self.instance.handle_message_raw(sender, payload)
        return answer, list(self.calls)

    def callback(self, correlation_id: str, reply: bytes | BaseException) -> list[Call]:
        self.calls.clear()
        self.instance.handle_callback(correlation_id, reply)
        return list(self.calls)


def _reference_runtime() -> Runtime:
    """A runtime whose linker registers the same imports through wasmtime-py's add_func."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            runtime_module,
            "define_imports",
            functools.partial(_host.define_imports, trampoline=False),
        )
        return Runtime(disk_cache=False)


@pytest.fixture(scope="module")
def runtimes() -> Iterator[tuple[Runtime, Runtime]]:
    def messaging(slots: set[int]) -> set[int]:  # the services always take the trampoline
        return {i for i in slots if isinstance(_hostcall._SLOTS.get(i), _hostcall._HostFunc)}

    before = set(_hostcall._SLOTS)
    with Runtime(disk_cache=False) as ours:
        registered = messaging(set(_hostcall._SLOTS) - before)
        assert len(registered) == 5  # send, publish, request, self-address, log
        with _reference_runtime() as reference:
            # the reference registered its messaging and logging with add_func
            assert not messaging(set(_hostcall._SLOTS) - before) - registered
            yield ours, reference


@pytest.fixture(scope="module")
def pair(runtimes: tuple[Runtime, Runtime]) -> Iterator[tuple[Side, Side]]:
    ours, reference = runtimes
    sides = Side(ours), Side(reference)
    try:
        yield sides
    finally:
        for side in sides:
            side.instance.close()


# valid senders (airssys.names): any text but control characters and lone surrogates
senders = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
# up to 64 KiB: small ones byte by byte, larger ones as a repeated random pattern
payloads = st.one_of(
    st.binary(max_size=512),
    st.tuples(st.integers(0, 64 * KiB), st.binary(min_size=1, max_size=64)).map(
        lambda sized: (sized[1] * (sized[0] // len(sized[1]) + 1))[: sized[0]]
    ),
)
failures = st.sampled_from([None, None, "send", "publish", "request"])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sender=senders, payload=payloads, fail=failures)
@example(sender="a", payload=b"", fail=None)
@example(sender="送信者 🚀", payload=bytes(range(256)) * 256, fail=None)  # 64 KiB
@example(sender="x", payload=b"\x00", fail="request")
def test_host_calls_match_wasmtime_py(
    pair: tuple[Side, Side], sender: str, payload: bytes, fail: str | None
) -> None:
    ours, reference = pair
    answer, calls = ours.run(sender, payload, fail)
    assert (answer, calls) == reference.run(sender, payload, fail)
    # and they are what host.wat says it does
    assert calls[:2] == [("log", "info", sender), ("log", "debug", "test/recorder ✓")]
    assert calls[2] == ("send", sender, payload)
    if fail is None:
        assert calls[3:] == [
            ("publish", "fixture.events", payload),
            ("request", sender, payload, 250),
        ]
        assert answer == (True, f"corr-{ours.host.requests} ✓".encode())
    else:
        assert answer == (False, f"messaging.{fail} failed: no route for {fail} ✗")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    correlation_id=senders,
    reply=st.one_of(st.text(st.characters(blacklist_categories=["Cs"])), st.just(None)),
)
def test_callback_logs_match_wasmtime_py(
    pair: tuple[Side, Side], correlation_id: str, reply: str | None
) -> None:
    """handle-callback logs at info (the reply) or error (the failure): the enum path."""
    ours, reference = pair
    delivered: bytes | BaseException = (
        reply.encode() if reply is not None else TimeoutError("no reply ✗")
    )
    calls = ours.callback(correlation_id, delivered)
    assert calls == reference.callback(correlation_id, delivered)
    level, text = ("info", reply) if reply is not None else ("error", "no reply ✗")
    assert calls == [("log", "info", correlation_id), ("log", level, text)]


def test_one_mebibyte_payload_matches(runtimes: tuple[Runtime, Runtime]) -> None:
    # wasmtime-py's add_func converts the list one byte at a time: give it time
    limits = Limits(timeout_ms=300_000)
    ours, reference = (Side(rt, limits) for rt in runtimes)
    try:
        payload = os.urandom(MiB + 7)
        answer, calls = ours.run("big", payload)
        assert (answer, calls) == reference.run("big", payload)
        assert [c for c in calls if c[0] != "log"] == [
            ("send", "big", payload),
            ("publish", "fixture.events", payload),
            ("request", "big", payload, 250),
        ]
    finally:
        ours.instance.close()
        reference.instance.close()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class QuietHost(RecordingHost):
    """Fails like RecordingHost but keeps no record (the leak check must not grow).

    Its strings are long (an address of 1000 characters, correlation ids of 1 KiB,
    errors of 2 KiB), so one leaked copy per call would add up to tens of MiB.
    """

    def self_address(self) -> str:
        return "test/" + "q" * 995

    def _call(self, what: str, *args: object) -> None:
        if self.fail == what:
            raise LookupError(f"no route for {what}: " + "e" * 2048)

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._call("request")
        return "corr-" + "c" * 1019


def test_hundred_thousand_host_calls_keep_memory_flat(
    runtimes: tuple[Runtime, Runtime],
) -> None:
    """Every result shape (string, ok, err string, ok string) 100k times: a leaked
    string or boxed value would show as megabytes."""
    ours, _ = runtimes
    host = QuietHost([])
    instance = ours.instantiate(ours.load_file(fixture_path("host")), host=host)
    instance.guest_log = lambda level, message: None  # type: ignore[method-assign]
    counted = 0

    def message(i: int) -> None:
        nonlocal counted
        host.fail = (None, "send", "publish", "request")[i % 4]
        instance.handle_message_raw(f"sender-{i % 7}", payload)
        # log, self-address, log, send [, publish [, request]]
        counted += {None: 6, "send": 4, "publish": 5, "request": 6}[host.fail]

    payload = os.urandom(256)
    with instance:
        for i in range(2_000):
            message(i)
        before = _rss()
        counted = 0
        i = 0
        while counted < 100_000:
            message(i)
            i += 1
        grown = _rss() - before
        assert instance.alive
    assert grown < 8 * MiB, f"RSS grew by {grown} bytes over {counted} host calls"


# --- exceptions and the generic fallback, on a bare wasmtime linker ----------------

# imports messaging.send with the payload as PAYLOAD: (list u8) is the airssys
# signature; string is not, so the trampoline takes wasmtime-py's generic conversions.
# "run" calls it and returns its result
SEND_WAT = """
(component
  (import "airssys:component/messaging@0.1.0" (instance $m
    (export "send" (func (param "to" string) (param "payload" PAYLOAD)
                         (result (result (error string)))))))
  (core module $libc
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (i32.add (local.get 3) (i32.const 8))))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (core func $send (canon lower (func $m "send")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "send" (func $send (param i32 i32 i32 i32 i32)))
    (func (export "run") (param i32 i32 i32 i32) (result i32)
      (call $send (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const 16))
      (i32.const 16)))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance (export "send" (func $send))))))
  (func (export "run") (param "to" string) (param "payload" PAYLOAD)
                       (result (result (error string)))
    (canon lift (core func $main "run") (memory (core memory $libc "memory"))
      (realloc (core func $libc "realloc"))))
)
"""


class Bare:
    """SEND_WAT linked to one ``send`` function, through either registration path."""

    def __init__(
        self, send: _hostcall.HostFunction, *, ours: bool, payload_type: str = "(list u8)"
    ) -> None:
        self.engine = wasmtime.Engine()
        self.linker = wc.Linker(self.engine)
        with self.linker.root() as root, root.add_instance(MESSAGING) as messaging:
            if ours:
                _hostcall.add_func(
                    messaging,
                    "send",
                    send,
                    (_hostcall.STRING, _hostcall.BYTES),
                    _hostcall.UNIT_OR_ERR,
                )
            else:
                messaging.add_func("send", send)
        self.component = wc.Component(self.engine, SEND_WAT.replace("PAYLOAD", payload_type))

    def run(self, to: str, payload: str | bytes) -> object:
        store = wasmtime.Store(self.engine)
        instance = self.linker.instantiate(store, self.component)
        run = instance.get_func(store, "run")
        assert run is not None
        return run(store, to, payload)


@pytest.mark.parametrize("answer", [None, "refused ✗"])
@pytest.mark.parametrize(
    ("payload_type", "payload"),
    [("(list u8)", b"bytes \x00\xff"), ("string", "a string, not bytes")],
    ids=["airssys-signature", "other-signature"],
)
def test_same_answers_as_add_func(
    payload_type: str, payload: str | bytes, answer: str | None
) -> None:
    """The declared signature takes the fast path, another one wasmtime-py's
    conversions; either way the function sees what add_func would hand it."""
    seen: dict[bool, list[Call]] = {True: [], False: []}
    results = {}
    for ours in (True, False):

        def send(
            store: wasmtime.StoreContext, to: object, got: object, ours: bool = ours
        ) -> object:
            seen[ours].append((type(store) is _hostcall.HostContext, to, got))
            return answer

        results[ours] = Bare(send, ours=ours, payload_type=payload_type).run("peer ✓", payload)
    assert results[True] == results[False] == answer
    assert seen[True] == [(True, "peer ✓", payload)]
    assert seen[False] == [(False, "peer ✓", payload)]


@pytest.mark.parametrize("payload_type", ["(list u8)", "string"])
def test_an_exception_in_a_host_function_traps_only_its_call(payload_type: str) -> None:
    kept: list[wasmtime.StoreContext] = []

    def send(store: wasmtime.StoreContext, to: str, payload: object) -> None:
        kept.append(store)
        if to == "boom":
            raise RuntimeError("send exploded")

    bare = Bare(send, ours=True, payload_type=payload_type)
    payload = b"x" if payload_type != "string" else "x"
    with pytest.raises(wasmtime.WasmtimeError) as caught:
        bare.run("boom", payload)
    assert type(caught.value) is wasmtime.WasmtimeError  # not the RuntimeError itself
    assert "host function send raised RuntimeError('send exploded')" in str(caught.value)
    assert _enter.LAST_EXCEPTION is None
    assert bare.run("fine", payload) is None  # the next instance is untouched
    assert _enter.LAST_EXCEPTION is None
    # every StoreContext handed out was invalidated when its call returned
    assert len(kept) == 2
    for store in kept:
        with pytest.raises(ValueError, match="no longer valid"):
            store._context()


def test_a_wasmtime_error_from_a_host_function_is_the_calls_error() -> None:
    def send(store: wasmtime.StoreContext, to: str, payload: object) -> None:
        raise wasmtime.WasmtimeError(f"refusing {to}")

    with pytest.raises(wasmtime.WasmtimeError, match="refusing nobody"):
        Bare(send, ours=True).run("nobody", b"x")
    assert _enter.LAST_EXCEPTION is None


def test_dropping_the_linker_frees_its_slot() -> None:
    before = set(_hostcall._SLOTS)
    bare = Bare(lambda store, to, payload: None, ours=True)
    ours = set(_hostcall._SLOTS) - before
    assert len(ours) == 1
    assert bare.run("x", b"y") is None
    del bare
    gc.collect()
    assert not ours & set(_hostcall._SLOTS)


@pytest.mark.parametrize("wrong", [42, b"bytes", wc.Variant("err", "tagged")])
def test_a_wrong_result_is_a_trap_not_a_crash(wrong: object) -> None:
    def send(store: wasmtime.StoreContext, to: str, payload: object) -> object:
        return wrong  # neither None (ok) nor str (err)

    with pytest.raises(wasmtime.WasmtimeError, match=r"must return None \(ok\) or a str \(err\)"):
        Bare(send, ours=True).run("x", b"y")
    assert _enter.LAST_EXCEPTION is None


# --- through the runtime --------------------------------------------------------


class PanickingHost(QuietHost):
    def send(self, to: str, payload: bytes) -> None:
        raise HostPanic("send exploded")


class HostPanic(BaseException):
    pass


def test_a_host_panic_traps_only_its_instance(runtimes: tuple[Runtime, Runtime]) -> None:
    ours, _ = runtimes
    component = ours.load_file(fixture_path("host"))
    with ours.instantiate(component, host=PanickingHost([])) as instance:
        with pytest.raises(ComponentTrap, match=r"messaging\.send failed: HostPanic"):
            instance.handle_message_raw("x", b"hi")
        assert not instance.alive
    assert _enter.LAST_EXCEPTION is None
    host = QuietHost([])
    with ours.instantiate(component, host=host) as neighbour:
        assert neighbour.handle_message_raw("x", b"hi") == (True, b"corr-" + b"c" * 1019)
        host.fail = "publish"
        with pytest.raises(HandlerError, match="messaging.publish failed: no route"):
            neighbour.handle_message("x", b"hi")
        assert neighbour.alive


def test_instances_are_found_by_their_store(runtimes: tuple[Runtime, Runtime]) -> None:
    """Two live instances of one runtime: each host call reaches its own host."""
    ours, _ = runtimes
    component = ours.load_file(fixture_path("host"))
    first_calls: list[Call] = []
    second_calls: list[Call] = []
    with (
        ours.instantiate(component, host=RecordingHost(first_calls)) as first,
        ours.instantiate(component, host=RecordingHost(second_calls)) as second,
    ):
        for i in range(3):
            first.handle_message_raw("one", bytes([i]))
            second.handle_message_raw("two", bytes([i, i]))
    assert {c[1] for c in first_calls} == {"one", "fixture.events"}
    assert {c[1] for c in second_calls} == {"two", "fixture.events"}
    assert isinstance(first, ComponentInstance)
