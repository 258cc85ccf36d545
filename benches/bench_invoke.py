"""Per-call cost of handle-message: airssys fast path vs wasmtime-py public API vs Extism.

All three run the same echo work in the same process and run:
  * airssys: components/fixtures/echo.wat through ComponentInstance (fast path)
  * public:  the same component instance type called with wasmtime-py's Func.__call__
  * extism:  Extism's bare plugin.call("echo") on benches/peers/extism_echo.wat

    python benches/bench_invoke.py [--quick] [--json]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import extism
import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys.runtime import Limits, Runtime
from benches._common import (
    FIXTURES,
    PEERS,
    emit_json,
    fmt_time,
    machine,
    parse_args,
    per_call,
    quiet_logs,
    table,
)

SIZES = (0, 64, 1024, 16 * 1024, 1024 * 1024)
LABELS = {0: "0 B", 64: "64 B", 1024: "1 KiB", 16 * 1024: "16 KiB", 1024 * 1024: "1 MiB"}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    budget = 0.25 if args.quick else 1.0
    limits = Limits(memory=256 * 1024 * 1024, max_payload=4 * 1024 * 1024)
    results: dict[str, dict[str, float]] = {"airssys": {}, "public": {}, "extism": {}}

    with Runtime(disk_cache=False) as rt:
        echo = rt.load_file(FIXTURES / "echo.wat")
        wasm = bytes(wasmtime.wat2wasm((PEERS / "extism_echo.wat").read_text()))
        plugin = extism.Plugin(wasm, wasi=False)
        with (
            rt.instantiate(echo, limits=limits) as fast,
            rt.instantiate(echo, limits=limits, fast_path=False) as public,
        ):
            assert fast.uses_fast_path and not public.uses_fast_path
            for size in SIZES:
                payload = os.urandom(size)
                assert fast.handle_message("bench", payload) == payload
                assert public.handle_message("bench", payload) == payload
                assert plugin.call("echo", payload) == payload
                big = size >= 1024 * 1024
                rounds = 1 if big else 5
                calls = {
                    "airssys": partial(fast.handle_message, "bench", payload),
                    "public": partial(public.handle_message, "bench", payload),
                    "extism": partial(plugin.call, "echo", payload),
                }
                for peer, call in calls.items():
                    results[peer][str(size)] = per_call(call, budget, rounds)

    def ratio(peer: str, size: int) -> float:
        return results[peer][str(size)] / results["airssys"][str(size)]

    ratios = {
        "fast_vs_public_64": ratio("public", 64),
        "fast_vs_public_1024": ratio("public", 1024),
        "fast_vs_extism_64": ratio("extism", 64),
    }
    if args.json:
        emit_json(
            {
                "benchmark": "invoke",
                "unit": "seconds per call",
                "quick": args.quick,
                "per_call": results,
                "ratios": ratios,
                "machine": machine(),
            }
        )
        return
    rows = []
    for size in SIZES:
        rows.append(
            [
                LABELS[size],
                fmt_time(results["airssys"][str(size)]),
                fmt_time(results["public"][str(size)]),
                fmt_time(results["extism"][str(size)]),
                f"{ratio('public', size):.1f}x",
                f"{ratio('extism', size):.2f}x",
            ]
        )
    print("handle-message echo, time per call (median of rounds; ratios: peer time / ours)")
    print(
        table(
            ["payload", "airssys fast", "wasmtime public", "extism call", "vs public", "vs extism"],
            rows,
        )
    )
    print()
    for key, value in ratios.items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()
