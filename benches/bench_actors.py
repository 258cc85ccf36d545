"""Actor throughput: airssys (asyncio) against pykka (threads), in the same run.

tell      messages/s from one sender, all handled (a final ask waits for the last)
ask       sequential request-reply round trips/s
spawn     actors started per second (start + stop, pykka: ThreadingActor.start)
restart   supervisor restart latency after a crash, until the next reply (no backoff)

  python benches/bench_actors.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pykka

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from airssys.actors import Actor, ChildSpec, open_system
from benches._common import emit_json, machine, parse_args, quiet_logs, table


class Echo(Actor):
    def on_message(self, message: Any) -> Any:
        return message


class Crashy(Actor):
    def on_message(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash")
        return message


class PykkaEcho(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


async def ours(n_tell: int, n_ask: int, n_spawn: int, n_restart: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with open_system() as system:
        ref = await system.spawn(Echo, name="echo")
        await ref.ask("warm")
        t0 = time.perf_counter()
        for i in range(n_tell):
            await ref.tell(i)
        await ref.ask("done", timeout=None)
        out["tell_per_s"] = n_tell / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        for i in range(n_ask):
            await ref.ask(i)
        out["ask_per_s"] = n_ask / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        refs = [await system.spawn(Echo) for _ in range(n_spawn)]
        for r in refs:
            await r.stop()
        out["spawn_per_s"] = n_spawn / (time.perf_counter() - t0)

        sup = await system.spawn_supervisor(
            [ChildSpec("c", Crashy)], intensity=10**9, period=1.0, backoff_base=0.0
        )
        child = sup.child("c")
        samples = []
        for _ in range(n_restart):
            t0 = time.perf_counter()
            with contextlib.suppress(RuntimeError):
                await child.ask("crash")
            await child.ask("ping")
            samples.append(time.perf_counter() - t0)
        out["restart_median_ms"] = statistics.median(samples) * 1e3
        out["restart_p99_ms"] = sorted(samples)[int(len(samples) * 0.99) - 1] * 1e3
    return out


def pykka_run(n_tell: int, n_ask: int, n_spawn: int) -> dict[str, float]:
    out: dict[str, float] = {}
    ref = PykkaEcho.start()
    try:
        ref.ask("warm")
        t0 = time.perf_counter()
        for i in range(n_tell):
            ref.tell(i)
        ref.ask("done")
        out["tell_per_s"] = n_tell / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(n_ask):
            ref.ask(i)
        out["ask_per_s"] = n_ask / (time.perf_counter() - t0)
    finally:
        ref.stop()
    t0 = time.perf_counter()
    refs = [PykkaEcho.start() for _ in range(n_spawn)]
    for r in refs:
        r.stop()
    out["spawn_per_s"] = n_spawn / (time.perf_counter() - t0)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    scale = 1 if args.quick else 4
    n_tell, n_ask, n_spawn, n_restart = 50_000 * scale, 10_000 * scale, 500 * scale, 300 * scale
    # alternate, best of three each, so neither side owns the warm machine
    runs_ours, runs_pykka = [], []
    for _ in range(3):
        runs_ours.append(asyncio.run(ours(n_tell, n_ask, n_spawn, n_restart)))
        runs_pykka.append(pykka_run(n_tell, n_ask, n_spawn))
    best_ours = {
        k: max(r[k] for r in runs_ours) for k in ("tell_per_s", "ask_per_s", "spawn_per_s")
    }
    best_ours["restart_median_ms"] = min(r["restart_median_ms"] for r in runs_ours)
    best_ours["restart_p99_ms"] = min(r["restart_p99_ms"] for r in runs_ours)
    best_pykka = {k: max(r[k] for r in runs_pykka) for k in runs_pykka[0]}
    ratios = {
        "tell_vs_pykka": best_ours["tell_per_s"] / best_pykka["tell_per_s"],
        "ask_vs_pykka": best_ours["ask_per_s"] / best_pykka["ask_per_s"],
        "spawn_vs_pykka": best_ours["spawn_per_s"] / best_pykka["spawn_per_s"],
    }
    if args.json:
        emit_json(
            {
                "benchmark": "actors",
                "quick": args.quick,
                "airssys": best_ours,
                "pykka": best_pykka,
                "ratios": ratios,
                "restart": {
                    "median_ms": best_ours["restart_median_ms"],
                    "p99_ms": best_ours["restart_p99_ms"],
                },
                "machine": machine(),
            }
        )
        return
    rows = [
        [
            "tell (msg/s)",
            f"{best_ours['tell_per_s']:,.0f}",
            f"{best_pykka['tell_per_s']:,.0f}",
            f"{ratios['tell_vs_pykka']:.1f}x",
        ],
        [
            "ask (round trips/s)",
            f"{best_ours['ask_per_s']:,.0f}",
            f"{best_pykka['ask_per_s']:,.0f}",
            f"{ratios['ask_vs_pykka']:.1f}x",
        ],
        [
            "spawn+stop (actors/s)",
            f"{best_ours['spawn_per_s']:,.0f}",
            f"{best_pykka['spawn_per_s']:,.0f}",
            f"{ratios['spawn_vs_pykka']:.1f}x",
        ],
        [
            "restart latency",
            f"{best_ours['restart_median_ms']:.3f} ms (p99 {best_ours['restart_p99_ms']:.3f})",
            "n/a (no supervision)",
            "",
        ],
    ]
    print("airssys actors vs pykka (best of 3 alternating runs; ratio = ours / pykka)")
    print(table(["measure", "airssys", "pykka", "ratio"], rows))


if __name__ == "__main__":
    main()
