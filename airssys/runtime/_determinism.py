"""WASI clocks and randomness, recorded and replayed for durable components.

A durable component's replay must see the same time and the same random numbers
as its first run. wasmtime's WASI implementation cannot be asked for that, but
its linker lets a definition shadow another (``allow_shadowing``): a second
linker, used only for durable components, defines

* ``wasi:clocks/wall-clock``: ``now``, ``resolution``;
* ``wasi:random/random``, ``wasi:random/insecure``: the bytes and the u64s;
  ``wasi:random/insecure-seed``,

through airssys's trampoline. Each call is answered live (the host's clock,
``os.urandom``) and recorded with the message's other host calls, or, in replay,
answered from the journal. Calls made while the component is instantiated (before
any message) are not recorded.

``wasi:clocks/monotonic-clock`` is not shadowed: a shadowing definition replaces
the whole interface, and its ``subscribe-*`` functions return pollables, WASI
resources only wasmtime's implementation can make. A durable component whose
replies depend on the monotonic clock diverges on replay, and says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

import wasmtime
from wasmtime import component as wc

from . import _hostvalues as hv
from ._caller import Caller, Find

__all__ = ("WASI_VERSION", "define_deterministic_wasi")

WASI_VERSION: Final = "0.2.9"
"""The WASI 0.2 release wasmtime-py 50's ``add_wasip2`` defines (imports of any
0.2.x resolve to it)."""
_DATETIME: Final = hv.Record("datetime", ("seconds", hv.U64), ("nanoseconds", hv.U32))
_MAX_RANDOM: Final = 1 << 20


def _wall() -> tuple[int, int]:
    ns = time.time_ns()
    return (ns // 1_000_000_000, ns % 1_000_000_000)


def _random_bytes(length: int) -> bytes:
    if length > _MAX_RANDOM:
        raise wasmtime.WasmtimeError(
            f"get-random-bytes of {length} bytes: at most {_MAX_RANDOM} at a time"
        )
    return os.urandom(length)


def define_deterministic_wasi(linker: wc.Linker, instance_of: Find) -> None:
    """Shadow WASI's clocks and randomness in ``linker`` (which has ``add_wasip2``)."""

    def recorded(name: str, live: Callable[..., Any]) -> Callable[..., Any]:
        def attempt(_instance: Caller, args: tuple[Any, ...]) -> Any:
            return live(*args)

        def call(store: wasmtime.StoreContext, *args: Any) -> Any:
            return instance_of(store).host_call(name, attempt, args)

        return call

    v = WASI_VERSION
    interfaces: dict[str, list[tuple[str, Callable[..., Any], tuple[hv.Shape, ...], hv.Shape]]]
    interfaces = {
        f"wasi:clocks/wall-clock@{v}": [
            ("now", recorded("wall-clock.now", _wall), (), _DATETIME),
            ("resolution", recorded("wall-clock.resolution", lambda: (0, 1)), (), _DATETIME),
        ],
        f"wasi:random/random@{v}": [
            ("get-random-bytes", recorded("random.bytes", _random_bytes), (hv.U64,), hv.BYTES),
            (
                "get-random-u64",
                recorded("random.u64", lambda: int.from_bytes(os.urandom(8), "little")),
                (),
                hv.U64,
            ),
        ],
        f"wasi:random/insecure@{v}": [
            (
                "get-insecure-random-bytes",
                recorded("insecure.bytes", _random_bytes),
                (hv.U64,),
                hv.BYTES,
            ),
            (
                "get-insecure-random-u64",
                recorded("insecure.u64", lambda: int.from_bytes(os.urandom(8), "little")),
                (),
                hv.U64,
            ),
        ],
        f"wasi:random/insecure-seed@{v}": [
            (
                "insecure-seed",
                recorded(
                    "insecure-seed",
                    lambda: (
                        int.from_bytes(os.urandom(8), "little"),
                        int.from_bytes(os.urandom(8), "little"),
                    ),
                ),
                (),
                hv.Tuple(hv.U64, hv.U64),
            )
        ],
    }
    linker.allow_shadowing = True
    try:
        with linker.root() as root:
            for name, funcs in interfaces.items():
                with root.add_instance(name) as instance:
                    for func_name, fn, params, result in funcs:
                        hv.add_typed_func(instance, func_name, fn, params, result)
    finally:
        linker.allow_shadowing = False
