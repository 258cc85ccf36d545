"""Hot update under load: 64 callers ask one component while it is updated and rolled back.

Settings: ``open_system()`` defaults; the component (components/fixtures/counter.wat,
which answers each message with how many it has handled) runs under a supervisor
with default Limits and execution="auto"; 64 callers ask it continuously with a
64-byte payload and the default ask timeout. Phases, in one run:

  before    callers only (the baseline p99)
  update    ``system.update(address, <version 2.0.0>)``: start beside, probe, switch
  rollback  ``system.rollback(address)`` back to 1.0.0, the same blue-green way

Measured:
  * lost: asks sent minus replies and typed errors received (must be 0);
  * errors: asks answered with an error (must be 0: no ask is failed by a switch);
  * switch_ms: from the update call to the first reply by the new version (the
    counter starts again from 1 in the new instance, which tells its replies apart);
    also ``switch_call_ms``, the update call's own duration (load, start, probe, swap);
  * p99_before_ms, p99_during_ms: ask latency before, and of asks sent from the
    update call until 100 ms after the switch.

Peer: the same switch done the way a supervisor would without airssys.update:
terminate_child, then restart_child with the new spec (messages queued meanwhile
wait; asks in flight fail) — its lost/errors/switch figures side by side.

    python benches/bench_update.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec
from airssys.actors import ActorSystem, ChildSpec, open_system
from airssys.errors import AirssysError
from benches._common import FIXTURES, emit_json, machine, parse_args, quiet_logs, table

WIDTH = 64
ADDRESS = "/app/svc"
PAYLOAD = codec.encode(b"x" * 63, "raw")


def manifest(folder: Path, version: str) -> Path:
    path = folder / f"svc-{version}.toml"
    path.write_text(
        f'[component]\nname = "svc"\nversion = "{version}"\nwasm = "{FIXTURES / "counter.wat"}"\n'
    )
    return path


class Load:
    """64 callers asking continuously; every ask's start, end, reply count or error."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.sent = 0
        self.replies = 0
        self.errors = 0
        self.error_kinds: dict[str, int] = {}
        self.samples: list[tuple[float, float, int]] = []  # (start, end, count)
        self._stop = False
        self._tasks: list[asyncio.Task[None]] = []

    async def _caller(self) -> None:
        clock, system = time.perf_counter, self.system
        while not self._stop:
            self.sent += 1
            start = clock()
            try:
                reply = await system.ask(ADDRESS, PAYLOAD)
            except AirssysError as exc:
                self.errors += 1
                kind = type(exc).__name__
                self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
                await asyncio.sleep(0.001)  # a refused ask returns at once: back off
                continue
            self.replies += 1
            self.samples.append((start, clock(), struct.unpack("<I", reply)[0]))

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._caller()) for _ in range(WIDTH)]

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)

    @property
    def lost(self) -> int:
        return self.sent - self.replies - self.errors


def p99_ms(latencies: Sequence[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1e3 if ordered else float("nan")


def first_reply_of_new(samples: Sequence[tuple[float, float, int]], called: float) -> float | None:
    """When the new instance first answered: its counter starts again from 1, while
    the old one's is past 1 by then."""
    for _, end, count in sorted(samples, key=lambda s: s[1]):
        if end >= called and count == 1:
            return end
    return None


async def switch(load: Load, do: Any, settle: float) -> tuple[dict[str, float], float]:
    """Run ``do()`` under load; its figures and when it was called."""
    called = time.perf_counter()
    await do()
    returned = time.perf_counter()
    await asyncio.sleep(settle)
    first = first_reply_of_new(load.samples, called)
    during = [end - start for start, end, _ in load.samples if called <= start <= returned + 0.1]
    return {
        "switch_ms": (first - called) * 1e3 if first is not None else float("nan"),
        "switch_call_ms": (returned - called) * 1e3,
        "p99_during_ms": p99_ms(during),
        "asks_during": len(during),
    }, called


async def blue_green(folder: Path, phase_s: float) -> dict[str, Any]:
    async with open_system(storage="memory") as system:
        await system.spawn_supervisor(
            [system.component_spec("svc", manifest(folder, "1.0.0"))], name="app"
        )
        v2 = manifest(folder, "2.0.0")
        load = Load(system)
        load.start()
        await asyncio.sleep(phase_s)
        before = [end - start for start, end, _ in load.samples]
        update, _ = await switch(load, lambda: system.update(ADDRESS, v2), phase_s)
        rollback, _ = await switch(load, lambda: system.rollback(ADDRESS), phase_s)
        await load.stop()
        versions = [v.version for v in system.versions(ADDRESS)]
    return {
        "lost": load.lost,
        "errors": load.errors,
        "error_kinds": load.error_kinds,
        "sent": load.sent,
        "p99_before_ms": p99_ms(before),
        "update": update,
        "rollback": rollback,
        "versions_after": versions,
    }


async def restart_peer(folder: Path, phase_s: float) -> dict[str, Any]:
    """The same switch by terminate_child + restart_child with a new spec."""
    async with open_system(storage="memory") as system:
        sup = await system.spawn_supervisor(
            [system.component_spec("svc", manifest(folder, "1.0.0"))], name="app"
        )
        spec = system.component_spec("svc", manifest(folder, "2.0.0"))
        load = Load(system)
        load.start()
        await asyncio.sleep(phase_s)
        before = [end - start for start, end, _ in load.samples]

        async def replace() -> None:
            await sup.terminate_child("svc")
            await sup.delete_child("svc")
            await sup.start_child(ChildSpec("svc", spec.start))

        figures, _ = await switch(load, replace, phase_s)
        await load.stop()
    return {
        "lost": load.lost,
        "errors": load.errors,
        "error_kinds": load.error_kinds,
        "sent": load.sent,
        "p99_before_ms": p99_ms(before),
        "update": figures,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    phase = 1.0 if args.quick else 3.0
    with tempfile.TemporaryDirectory() as tmp:
        ours = asyncio.run(blue_green(Path(tmp), phase))
        peer = asyncio.run(restart_peer(Path(tmp), phase))
    update = ours["update"]
    result = {
        "benchmark": "update",
        "quick": args.quick,
        "settings": "open_system() defaults; counter.wat under a supervisor; "
        f"{WIDTH} callers, 64-byte asks",
        "update": {
            "lost": ours["lost"],
            "errors": ours["errors"],
            "switch_ms": update["switch_ms"],
            "switch_call_ms": update["switch_call_ms"],
            "p99_before_ms": ours["p99_before_ms"],
            "p99_during_ms": update["p99_during_ms"],
            "p99_ratio": update["p99_during_ms"] / ours["p99_before_ms"],
            "asks": ours["sent"],
        },
        "rollback": ours["rollback"],
        "versions_after": ours["versions_after"],
        "peer_restart_child": {
            "lost": peer["lost"],
            "errors": peer["errors"],
            "error_kinds": peer["error_kinds"],
            "switch_ms": peer["update"]["switch_ms"],
            "p99_before_ms": peer["p99_before_ms"],
            "p99_during_ms": peer["update"]["p99_during_ms"],
        },
        "aims": {"lost": 0, "errors": 0, "switch_ms": 100, "p99_ratio": 3},
        "machine": machine(),
    }
    if args.json:
        emit_json(result)
        return
    u, r, q = result["update"], result["rollback"], result["peer_restart_child"]
    print(f"hot update under load ({result['settings']})")
    rows = [
        [
            "airssys update (blue-green)",
            str(u["lost"]),
            str(u["errors"]),
            f"{u['switch_ms']:.1f}",
            f"{u['p99_before_ms']:.2f}",
            f"{u['p99_during_ms']:.2f}",
        ],
        [
            "airssys rollback",
            "-",
            "-",
            f"{r['switch_ms']:.1f}",
            "-",
            f"{r['p99_during_ms']:.2f}",
        ],
        [
            "peer: terminate+start_child",
            str(q["lost"]),
            str(q["errors"]),
            f"{q['switch_ms']:.1f}",
            f"{q['p99_before_ms']:.2f}",
            f"{q['p99_during_ms']:.2f}",
        ],
    ]
    print(table(["switch", "lost", "errors", "switch ms", "p99 before", "p99 during"], rows))
    print(
        f"aims: lost 0, errors 0, switch <= 100 ms, p99 during <= 3x before "
        f"(ours: {u['p99_ratio']:.2f}x); {u['asks']} asks in all"
    )


if __name__ == "__main__":
    main()
