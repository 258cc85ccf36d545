"""Typed host functions (airssys.runtime._hostvalues): results written by shape.

A bare component imports ``f: func(to: string, payload: list<u8>) -> RESULT`` and
exports ``run`` with the same signature, passing the arguments and the result's
memory straight through; wasmtime-py then lifts what the host function wrote, so
every shape is checked against wasmtime's own reading of it. (wasmtime-py lifts
these results untagged: the ok or err payload itself, told apart by its type.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import wasmtime
from wasmtime import component as wc
from wasmtime.component import _enter

from airssys.runtime import _hostcall
from airssys.runtime import _hostvalues as hv

RESULT_WAT = """
(component
  (import "test:host/api" (instance $api
    (export "f" (func (param "to" string) (param "payload" (list u8)) (result RESULT)))))
  (core module $libc
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
      (global.set $heap (i32.add (local.get $p) (i32.add (local.get 3) (i32.const 8))))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (core func $f (canon lower (func $api "f")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "f" (func $f (param i32 i32 i32 i32 i32)))
    (func (export "run") (param i32 i32 i32 i32) (result i32)
      (call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const 16))
      (i32.const 16)))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance (export "f" (func $f))))))
  (func (export "run") (param "to" string) (param "payload" (list u8)) (result RESULT)
    (canon lift (core func $main "run") (memory (core memory $libc "memory"))
      (realloc (core func $libc "realloc"))))
)
"""


def run(
    result_wat: str,
    result: hv.Shape,
    fn: Callable[..., Any],
    *,
    params: tuple[hv.Shape, ...] = (hv.STRING, hv.BYTES),
    payload: bytes = b"\x00\xff payload",
) -> Any:
    """Call ``run("to ✓", payload)`` with ``f`` registered as a typed function."""
    engine = wasmtime.Engine()
    linker = wc.Linker(engine)
    with linker.root() as root, root.add_instance("test:host/api") as api:
        hv.add_typed_func(api, "f", fn, params, result)
    component = wc.Component(engine, RESULT_WAT.replace("RESULT", result_wat))
    store = wasmtime.Store(engine)
    try:
        instance = linker.instantiate(store, component)
        func = instance.get_func(store, "run")
        assert func is not None
        return func(store, "to ✓", payload)
    finally:
        store.close()


def answer(value: Any) -> Callable[..., Any]:
    def f(store: wasmtime.StoreContext, to: str, payload: bytes) -> Any:
        assert (to, payload[:2]) == ("to ✓", b"\x00\xff")
        return value

    return f


OPTION_BYTES = "(result (option (list u8)) (error string))"
OPTION_BYTES_SHAPE = hv.Result(hv.Option(hv.BYTES), hv.STRING)


@pytest.mark.parametrize(
    ("value", "lifted"),
    [
        (wc.Variant("ok", None), None),
        (wc.Variant("ok", b""), b""),
        (wc.Variant("ok", bytes(range(256)) * 40), bytes(range(256)) * 40),
        (wc.Variant("err", "refused ✗"), "refused ✗"),
    ],
    ids=["none", "empty", "10KiB", "err"],
)
def test_result_option_bytes(value: wc.Variant, lifted: object) -> None:
    """The err case too, which wasmtime-py's own conversion cannot lower here."""
    assert run(OPTION_BYTES, OPTION_BYTES_SHAPE, answer(value)) == lifted


def test_a_list_of_tuples_with_options() -> None:
    shape = hv.Result(hv.List(hv.Tuple(hv.STRING, hv.Option(hv.BYTES))), hv.STRING)
    wat = "(result (list (tuple string (option (list u8)))) (error string))"
    pairs = [("a", b"1"), ("ключ", None), ("", b"")]
    assert run(wat, shape, answer(wc.Variant("ok", pairs))) == pairs
    assert run(wat, shape, answer(wc.Variant("ok", []))) == []
    assert run(wat, shape, answer(wc.Variant("err", "no"))) == "no"


@pytest.mark.parametrize("number", [0, -(2**63), 2**63 - 1, 42])
def test_integers(number: int) -> None:
    shape = hv.Result(hv.Tuple(hv.S64, hv.U16, hv.S32, hv.BOOL), hv.STRING)
    wat = "(result (tuple s64 u16 s32 bool) (error string))"
    value = (number, abs(number) % 65536, -7, True)
    assert run(wat, shape, answer(wc.Variant("ok", value))) == value


def test_arguments_of_every_kind_arrive() -> None:
    seen: list[Any] = []

    def f(store: wasmtime.StoreContext, to: str, payload: bytes) -> Any:
        seen.append((to, payload))
        return wc.Variant("ok", None)

    big = bytes(range(256)) * 96  # 24 KiB: more than one chunk of the reader
    run(OPTION_BYTES, OPTION_BYTES_SHAPE, f, payload=big)
    assert seen == [("to ✓", big)]


@pytest.mark.parametrize(
    "wrong",
    [
        42,
        wc.Variant("ok", "a str, not bytes"),
        wc.Variant("maybe", None),
        wc.Variant("err", None),
        [("a", b"1"), ("b", 7)],
    ],
)
def test_a_result_not_of_the_shape_traps_the_call_and_leaks_nothing(wrong: Any) -> None:
    shape = hv.Result(hv.List(hv.Tuple(hv.STRING, hv.Option(hv.BYTES))), hv.STRING)
    wat = "(result (list (tuple string (option (list u8)))) (error string))"
    value = wc.Variant("ok", wrong) if isinstance(wrong, list) else wrong
    with pytest.raises(wasmtime.WasmtimeError, match="host function f raised TypeError"):
        run(wat, shape, answer(value))
    assert _enter.LAST_EXCEPTION is None


def test_another_signature_traps_naming_the_function() -> None:
    with pytest.raises(wasmtime.WasmtimeError, match="imports it with another signature"):
        run(OPTION_BYTES, OPTION_BYTES_SHAPE, answer(None), params=(hv.STRING, hv.STRING))
    with pytest.raises(wasmtime.WasmtimeError, match="imports it with another signature"):
        run(OPTION_BYTES, OPTION_BYTES_SHAPE, answer(None), params=(hv.STRING,))
    assert _enter.LAST_EXCEPTION is None


def test_a_lone_surrogate_never_reaches_the_guest() -> None:
    got = run(OPTION_BYTES, OPTION_BYTES_SHAPE, answer(wc.Variant("err", "bad \ud800 text")))
    assert got == "bad ? text"


def test_the_slot_goes_with_the_linker() -> None:
    before = set(_hostcall._SLOTS)
    run(OPTION_BYTES, OPTION_BYTES_SHAPE, answer(wc.Variant("ok", None)))
    import gc

    gc.collect()
    assert set(_hostcall._SLOTS) <= before
