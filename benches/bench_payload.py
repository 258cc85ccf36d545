"""Large payloads through the full path, with default settings, next to Extism.

    ask -> broker -> mailbox -> ComponentActor -> wasm -> reply

at 1 KiB, 64 KiB, 1 MiB and 16 MiB of random bytes (the harder case for the bulk
lane: not ASCII, so it crosses as hex), for:
  * airssys, echo-bulk.wat (exports the bulk lane; what a component built with the
    airssys SDK gets), default Limits and execution ("auto");
  * airssys, echo.wat (list<u8> only), where its ceiling allows (2.67 MiB);
  * Extism's bare plugin.call("echo") on benches/peers/extism_echo.wat.
Also the peak RSS of a separate process that echoes 1 MiB through the full path
(bulk lane), above the same process idle, and whether 16 MiB went both ways.

    python benches/bench_payload.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import extism
import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec, open_system
from airssys.runtime import LIST_PAYLOAD_MAX
from benches._common import (
    FIXTURES,
    PEERS,
    ROOT,
    emit_json,
    fmt_time,
    machine,
    parse_args,
    quiet_logs,
    table,
)

SIZES = (1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024)


def payload(size: int, text: bool = False) -> bytes:
    """Random bytes (the hard case: not ASCII, so the lane carries hex), or text."""
    body = b"t" * (size - 1) if text else os.urandom(size - 1)
    return codec.encode(body, "raw")  # raw prefix + the body: `size` bytes in all


def median_time(fn: Any, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2]


async def full_path(
    fixture: str, sizes: tuple[int, ...], rounds: int, text: bool = False
) -> dict[int, float]:
    out: dict[int, float] = {}
    async with open_system() as system:
        await system.spawn_component(FIXTURES / f"{fixture}.wat", name="echo")
        for size in sizes:
            data = payload(size, text)
            assert await system.ask("/echo", data, timeout=60) == data
            samples = []
            for _ in range(rounds if size < 4 * 1024 * 1024 else max(3, rounds // 4)):
                started = time.perf_counter()
                await system.ask("/echo", data, timeout=60)
                samples.append(time.perf_counter() - started)
            samples.sort()
            out[size] = samples[len(samples) // 2]
    return out


def extism_times(sizes: tuple[int, ...], rounds: int) -> dict[int, float]:
    wasm = bytes(wasmtime.wat2wasm((PEERS / "extism_echo.wat").read_text()))
    out: dict[int, float] = {}
    with extism.Plugin(wasm, wasi=False) as plugin:
        for size in sizes:
            data = payload(size)
            assert bytes(plugin.call("echo", data)) == data
            n = rounds if size < 4 * 1024 * 1024 else max(3, rounds // 4)
            out[size] = median_time(lambda d=data: plugin.call("echo", d), n)
    return out


_RSS_PROBE = textwrap.dedent(
    """
    import asyncio, os, resource, sys, threading, time
    from airssys import codec, open_system

    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()

    async def main():
        async with open_system() as system:
            await system.spawn_component(sys.argv[1], name="echo")
            small = codec.encode(b"x", "raw")
            await system.ask("/echo", small)
            data = codec.encode(os.urandom(1024 * 1024 - 1), "raw")
            idle = rss()  # the payload itself already made
            peak, running = [idle], True

            def sample() -> None:  # the high-water mark of this phase alone
                while running:
                    peak[0] = max(peak[0], rss())
                    time.sleep(0.0002)

            sampler = threading.Thread(target=sample)
            sampler.start()
            for _ in range(5):
                assert await system.ask("/echo", data, timeout=60) == data
            running = False
            sampler.join()
            print(idle, peak[0])

    asyncio.run(main())
    """
)


def peak_rss_mb() -> float:
    """Peak RSS while 1 MiB echoes run, above the same process just before (payload
    made, component warm), in MB; sampled every 0.2 ms from /proc/self/statm."""
    result = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(FIXTURES / "echo-bulk.wat")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    idle, peak = (int(v) for v in result.stdout.split())
    return (peak - idle) / 1e6


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    rounds = 7 if args.quick else 25
    bulk = asyncio.run(full_path("echo-bulk", SIZES, rounds))
    text = asyncio.run(full_path("echo-bulk", SIZES, rounds, text=True))
    listed_sizes = tuple(s for s in SIZES if s <= LIST_PAYLOAD_MAX)
    listed = asyncio.run(full_path("echo", listed_sizes, max(3, rounds // 3)))
    peer = extism_times(SIZES, rounds)
    rss = peak_rss_mb()
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": "default Limits, execution=auto; random payloads; median of rounds",
        "roundtrip_ms": {str(s): bulk[s] * 1e3 for s in SIZES},
        "roundtrip_text_ms": {str(s): text[s] * 1e3 for s in SIZES},
        "list_lane_ms": {str(s): listed[s] * 1e3 for s in listed_sizes},
        "extism_ms": {str(s): peer[s] * 1e3 for s in SIZES},
        "ratios": {f"extism_vs_airssys_{s}": peer[s] / bulk[s] for s in SIZES},
        "peak_rss_mb": {"1048576": rss},
        "ok": {"16777216": 16 * 1024 * 1024 in bulk},
    }
    if args.json:
        emit_json(results)
        return
    rows = []
    for size in SIZES:
        rows.append(
            [
                f"{size // 1024} KiB",
                fmt_time(bulk[size]),
                fmt_time(text[size]),
                fmt_time(listed[size]) if size in listed else "refused (ceiling)",
                fmt_time(peer[size]),
                f"{peer[size] / bulk[size]:.2f}x",
            ]
        )
    print("Round trip through the full path (ask -> broker -> mailbox -> actor -> wasm -> reply)")
    print("airssys rows: default Limits (max-payload 16 MiB), execution=auto")
    print(
        table(
            [
                "payload",
                "airssys bulk lane",
                "bulk lane, text",
                "airssys list<u8>",
                "extism bare call",
                "ratio",
            ],
            rows,
        )
    )
    print("random bytes unless marked text (ASCII crosses as itself; other bytes as hex)")
    print("ratio: Extism's time / airssys's bulk lane, random bytes (above 1: airssys faster)")
    print(f"peak RSS for a 1 MiB echo (bulk lane), above idle: {rss:.1f} MB (payload: 1.05 MB)")
    print(f"16 MiB both ways: {'yes' if results['ok']['16777216'] else 'no'}")


if __name__ == "__main__":
    main()
