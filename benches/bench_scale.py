"""Many components in one process: spawn rate, memory per actor, and loop stalls.

* 10,000 (``--quick``: 2,000) WAT echo actors spawned under one system, default
  settings: spawns per second and resident memory per actor (RSS growth divided
  by the actors spawned), with one message answered by each, next to pykka's
  actor start rate (threads, no wasm) for scale;
* 100 (``--quick``: 20) Python echo components (components/echo, built if needed)
  spawned at once while a probe task measures how late the event loop wakes it:
  the longest stall, in ms.

  python benches/bench_scale.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pykka

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec, open_system
from benches._common import FIXTURES, ROOT, emit_json, machine, parse_args, quiet_logs, table


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


async def spawn_many(n: int) -> dict[str, float]:
    hello = codec.encode(b"hi", "raw")
    async with open_system() as system:
        component = system.runtime.load(FIXTURES / "echo.wat")
        first = await system.spawn_component(component, name="warm")
        await first.ask(hello)
        before = rss_kib()
        started = time.perf_counter()
        refs = [await system.spawn_component(component, name=f"e{i}") for i in range(n)]
        spawn_s = time.perf_counter() - started
        await asyncio.gather(*(ref.ask(hello, timeout=60) for ref in refs))
        after = rss_kib()
        return {"spawn_per_s": n / spawn_s, "rss_kib_per_actor": (after - before) / n}


def pykka_starts(n: int) -> float:
    class Noop(pykka.ThreadingActor):
        pass

    started = time.perf_counter()
    refs = [Noop.start() for _ in range(n)]
    rate = n / (time.perf_counter() - started)
    for ref in refs:
        ref.stop()
    return rate


async def python_spawns(n: int) -> dict[str, float]:
    from airssys.build import build_component

    source = ROOT / "components" / "echo"
    build_component(source)
    stalls: list[float] = []
    running = True

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while running:
            asked = loop.time()
            await asyncio.sleep(0.001)
            stalls.append(loop.time() - asked - 0.001)

    async with open_system() as system:
        system.load_component(source)  # compile/deserialize once, before the probe
        watcher = asyncio.create_task(probe())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        refs = await asyncio.gather(
            *(system.spawn_component(source, name=f"py{i}") for i in range(n))
        )
        spawn_s = time.perf_counter() - started
        spawn_stall = max(stalls)
        stalls.clear()
        before = rss_kib()
        await asyncio.gather(*(r.ask(codec.encode({"n": 1}, "json"), timeout=60) for r in refs))
        rss_after_first = (rss_kib() - before) / n
        running = False
        await watcher
    return {
        "python_spawn_max_stall_ms": spawn_stall * 1e3,
        "python_first_messages_max_stall_ms": max(stalls) * 1e3,
        "python_spawn_per_s": n / spawn_s,
        "python_rss_kib_per_actor_first_message": rss_after_first,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    n = 2_000 if args.quick else 10_000
    n_py = 20 if args.quick else 100
    wat = asyncio.run(spawn_many(n))
    pykka_rate = pykka_starts(min(n, 2_000))
    py = asyncio.run(python_spawns(n_py))
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": "default Limits, execution=auto, default Runtime",
        "actors": n,
        "python_actors": n_py,
        **wat,
        "pykka_start_per_s": pykka_rate,
        **py,
        "ratios": {"spawn_vs_pykka_start": wat["spawn_per_s"] / pykka_rate},
    }
    if args.json:
        emit_json(results)
        return
    print(f"{n} WAT echo actors and {n_py} Python echo components; default settings")
    print(
        table(
            ["measure", "airssys", "peer"],
            [
                [
                    "spawns per second",
                    f"{wat['spawn_per_s']:.0f}",
                    f"pykka start: {pykka_rate:.0f} ({wat['spawn_per_s'] / pykka_rate:.2f}x)",
                ],
                ["RSS per WAT actor", f"{wat['rss_kib_per_actor']:.1f} KiB", ""],
                ["Python spawns per second", f"{py['python_spawn_per_s']:.0f}", ""],
                [
                    "longest loop stall, Python spawns",
                    f"{py['python_spawn_max_stall_ms']:.1f} ms",
                    "aim <= 10 ms",
                ],
                [
                    "longest loop stall, their first messages",
                    f"{py['python_first_messages_max_stall_ms']:.1f} ms",
                    "(worker threads run them)",
                ],
                [
                    "RSS per Python actor after 1st message",
                    f"{py['python_rss_kib_per_actor_first_message']:.0f} KiB",
                    "",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
