"""The optional snapshot export (airssys:component/snapshot): found, checked, callable.

The host-side call (ComponentInstance.snapshot/restore) is not here: these tests call
the exports through wasmtime-py's public API on the instance.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime import component as wc

from airssys import codec
from airssys.errors import ComponentLoadError, MissingExport
from airssys.runtime import ComponentInstance, Limits, Runtime
from airssys.runtime._world import SNAPSHOT
from tests.conftest import fixture_path

U32 = struct.Struct("<I")


def _store(instance: ComponentInstance) -> wasmtime.Store:
    store = instance._store
    assert store is not None
    return store


def _export(instance: ComponentInstance, func: str) -> wc.Func:
    store, inst = _store(instance), instance._instance
    index = inst.get_export_index(store, SNAPSHOT)
    assert index is not None
    func_index = inst.get_export_index(store, func, index)
    assert func_index is not None
    found = inst.get_func(store, func_index)
    assert found is not None
    return found


def snapshot(instance: ComponentInstance) -> bytes:
    instance._refill()  # a fresh fuel and deadline budget, as for a message
    state = _export(instance, "snapshot")(_store(instance))
    assert isinstance(state, bytes)
    return state


def restore(instance: ComponentInstance, state: bytes) -> str | None:
    """None for ok, the reason for err."""
    instance._refill()
    said: Any = _export(instance, "restore")(_store(instance), state)
    assert said is None or isinstance(said, str)
    return said


def test_snapshot_constant_names_the_wit_interface() -> None:
    assert SNAPSHOT == "airssys:component/snapshot@0.1.0"
    wit = (Path(__file__).resolve().parents[2] / "wit" / "airssys.wit").read_text()
    assert "interface snapshot {" in wit
    component_world = wit.split("world component {", 1)[1].split("}", 1)[0]
    handler_only = wit.split("world handler-only {", 1)[1].split("}", 1)[0]
    assert "export snapshot;" in component_world
    assert "snapshot" not in handler_only


def test_durable_counter_has_snapshot_and_counter_does_not(runtime: Runtime) -> None:
    durable = runtime.load(fixture_path("durable-counter"))
    assert durable.world.has_snapshot and not durable.world.has_callback
    assert durable.world.imports == ()
    for plain in ("counter", "echo", "echo-bulk", "host"):
        assert not runtime.load(fixture_path(plain)).world.has_snapshot, plain


def test_durable_counter_state_moves_to_a_fresh_instance(runtime: Runtime) -> None:
    component = runtime.load(fixture_path("durable-counter"))
    with runtime.instantiate(component) as first:
        assert snapshot(first) == U32.pack(0)
        replies = [first.handle_message("me", b"x") for _ in range(3)]
        assert replies == [U32.pack(n) for n in (1, 2, 3)]
        state = snapshot(first)
        assert state == U32.pack(3)
    with runtime.instantiate(component) as second:
        assert restore(second, state) is None
        assert second.handle_message("me", b"x") == U32.pack(4)
        assert restore(second, U32.pack(41)) is None
        assert second.handle_message("me", b"x") == U32.pack(42)
        assert second.alive


@pytest.mark.parametrize("state", [b"", b"abc", b"12345"])
def test_durable_counter_refuses_a_state_of_the_wrong_length(
    runtime: Runtime, state: bytes
) -> None:
    with runtime.instantiate(runtime.load(fixture_path("durable-counter"))) as instance:
        instance.handle_message("me", b"x")
        assert restore(instance, state) == "durable-counter: the state must be 4 bytes"
        assert instance.alive
        assert instance.handle_message("me", b"x") == U32.pack(2)  # the count is kept


def _with_snapshot(snapshot_sig: str, restore_sig: str, funcs: str = "both") -> str:
    """The echo fixture plus a snapshot export of the given signatures (never called)."""
    options = '(memory (core memory $s "memory")) (realloc (core func $s "realloc"))'
    core_snapshot = "snapshot-with-args" if "param" in snapshot_sig else "snapshot"
    lifted = {
        "snapshot": f'(func $snap {snapshot_sig} (canon lift (core func $s "{core_snapshot}") '
        f"{options}))",
        "restore": f'(func $restore {restore_sig} (canon lift (core func $s "restore") {options}))',
    }
    chosen = ["snapshot", "restore"] if funcs == "both" else [funcs]
    exports = " ".join(
        f'(export "{f}" (func ${"snap" if f == "snapshot" else "restore"}))' for f in chosen
    )
    extra = f"""
  (core module $sm
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
    (func (export "snapshot") (result i32) (i32.const 0))
    (func (export "snapshot-with-args") (param i32 i32) (result i32) (i32.const 0))
    (func (export "restore") (param i32 i32) (result i32) (i32.const 0)))
  (core instance $s (instantiate $sm))
  {" ".join(lifted[f] for f in chosen)}
  (instance $snapshot {exports})
  (export "{SNAPSHOT}" (instance $snapshot))
)"""
    echo = fixture_path("echo").read_text().rstrip()
    assert echo.endswith(")")
    return echo[:-1] + extra


RIGHT_SNAPSHOT = "(result (list u8))"
RIGHT_RESTORE = '(param "state" (list u8)) (result (result (error string)))'


def test_the_inline_snapshot_export_with_the_right_shapes_loads(runtime: Runtime) -> None:
    component = runtime.load(_with_snapshot(RIGHT_SNAPSHOT, RIGHT_RESTORE), name="inline")
    assert component.world.has_snapshot


@pytest.mark.parametrize(
    ("snapshot_sig", "restore_sig", "found"),
    [
        ("(result string)", RIGHT_RESTORE, "snapshot: func() -> string"),
        (
            '(param "x" (list u8)) (result (list u8))',
            RIGHT_RESTORE,
            "snapshot: func(x: list<u8>) -> list<u8>",
        ),
        (
            RIGHT_SNAPSHOT,
            '(param "state" string) (result (result (error string)))',
            "restore: func(state: string) -> result<_, string>",
        ),
        (
            RIGHT_SNAPSHOT,
            '(param "state" (list u8)) (result (result (list u8) (error string)))',
            "restore: func(state: list<u8>) -> result<list<u8>, string>",
        ),
        (
            RIGHT_SNAPSHOT,
            '(param "state" (list u8)) (result u32)',
            "restore: func(state: list<u8>) -> u32",
        ),
    ],
)
def test_a_snapshot_export_of_the_wrong_shape_is_refused(
    runtime: Runtime, snapshot_sig: str, restore_sig: str, found: str
) -> None:
    with pytest.raises(MissingExport) as info:
        runtime.load(_with_snapshot(snapshot_sig, restore_sig), name="wrong")
    message = str(info.value)
    assert isinstance(info.value, ComponentLoadError)
    assert f"component 'wrong' exports '{SNAPSHOT}' with {found}; expected " in message
    assert "restore: func(state: list<u8>) -> result<_, string>" in message


@pytest.mark.parametrize("only", ["snapshot", "restore"])
def test_a_snapshot_export_missing_a_function_is_refused(runtime: Runtime, only: str) -> None:
    missing = "restore" if only == "snapshot" else "snapshot"
    with pytest.raises(MissingExport, match=f"without a '{missing}' function; expected"):
        runtime.load(_with_snapshot(RIGHT_SNAPSHOT, RIGHT_RESTORE, funcs=only), name="half")


@pytest.mark.timeout(600)
def test_a_built_python_component_snapshots_its_durable_state(
    built_components: Path, runtime: Runtime
) -> None:
    counter = runtime.load(built_components / "counter" / "counter.wasm")
    assert counter.world.has_snapshot and counter.world.has_callback
    limits = Limits(timeout_ms=10_000)

    def add(instance: ComponentInstance, n: int) -> Any:
        reply = instance.handle_message("me", codec.encode({"add": n}))
        assert reply is not None
        return codec.decode(reply)

    with runtime.instantiate(counter, limits=limits) as first:
        assert snapshot(first) == codec.encode({"count": 0})
        assert [add(first, n) for n in (2, 3)] == [{"count": 2}, {"count": 5}]
        state = snapshot(first)
    assert codec.decode(state) == {"count": 5}
    with runtime.instantiate(counter, limits=limits) as second:
        assert restore(second, state) is None
        assert add(second, 1) == {"count": 6}
        refused = restore(second, b"\x80\x04[1]")
        assert refused == "the snapshot holds a list, not durable state (a map of names to values)"
        assert restore(second, b"garbage") is not None
        assert add(second, 1) == {"count": 7}  # a refused restore keeps the state
        assert second.alive

    # echo registered no state: snapshot is b"", and only b"" restores
    echo = runtime.load(built_components / "echo" / "echo.wasm")
    assert echo.world.has_snapshot
    with runtime.instantiate(echo, limits=limits) as instance:
        assert snapshot(instance) == b""
        assert restore(instance, b"") is None
        refused = restore(instance, b"abc")
        assert refused is not None and "registered no durable state" in refused
        assert "3 bytes" in refused
