"""Hot update of a durable component under load, counted by the bench's callers (issue 22).

A durable counter (it replies to each message with how many it has handled) runs in
an in-process system (``open_system(storage="memory", data_dir=...)``) and is asked by
``callers`` concurrent callers (``system.ask``, default timeout) while it is switched
``switches`` times: ``system.update(address, v2, probation=0)`` then
``system.rollback(address)``, alternately (5 and 5), with ``between`` replies between
two switches. ``v2`` is the same fixture with one unused function added (another
digest: a real second version), compiled before the run (the figures are "once
compiled"). Two fixtures:

* components/fixtures/counter.wat, ``{"journal": true}``: no snapshot export, so the
  new version replays the journal (the whole of it: nothing compacts it) and must
  reproduce every recorded reply;
* components/fixtures/durable-counter.wat, ``{"journal": true, "snapshot-every": N}``:
  the serving version's snapshot is handed to the new one at the fence.

Each caller keeps every reply (a count) it got; the callers stop, then one more ask
reads the final count ``F`` (the ``F - 1`` increments before it are the state). Every
acknowledged increment must be in it exactly once:

* ``lost``: acknowledged minus ``F - 1`` when positive (a state that fell back);
* ``double``: reply values received more than once (a count handed out twice: the
  state fell back and was counted up again);
* ``unacked``: ``F - 1`` minus acknowledged when positive: increments in the state
  that nobody got a reply for (an ask that failed, or one applied twice); ``gaps``:
  values in ``1..F-1`` no reply carried;
* ``out_of_order``: replies a caller got that were not above its previous one (each
  caller asks one at a time, so its counts must rise);
* ``restart_lost``: the system closed and opened again on the same data dir (the
  journal replayed): ``F + 1`` minus the count the first ask then gets, when positive;
  ``restart_extra`` the other way (the journal held more than the state served: the
  code before the fix of 226babb showed both ``lost`` and ``restart_extra``).

``switch_ms`` is ``UpdateReport.switch_ms`` (the fence: from the end of the serving
version's last batch to the new version owning the mailbox, the time the address
handles nothing); ``update_ms`` is ``UpdateReport.update_ms`` (the whole call: start,
with a durable component's replay of its journal, probe, catch-up rounds beside the
serving version, switch); ``call_ms`` the bench's own clock around the call;
``pause_ms`` the longest time no caller got a reply during an update call (the fence,
as callers see it);
``ask_max_ms`` the longest any ask waited. ``acked_at_switch``: replies received when
each switch began (about the journal's length without snapshots).
"""

from __future__ import annotations

import asyncio
import bisect
import statistics
import struct
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from airssys import codec
from airssys.actors import ActorSystem, open_system
from airssys.errors import AirssysError
from benches._common import FIXTURES

ADDRESS = "/c"
TICK = codec.encode(b"x", "raw")
SWITCHES = 10  # 5 updates and 5 rollbacks
SNAPSHOT_EVERY = 300
MARK = "(global $count (mut i32) (i32.const 0))"
CASES: dict[str, dict[str, Any]] = {
    "counter": {"journal": True},
    "durable-counter": {"journal": True, "snapshot-every": SNAPSHOT_EVERY},
}


def second_version(fixture: Path, folder: Path) -> Path:
    """The fixture with an unused function added: the same behaviour, another digest."""
    text = fixture.read_text()
    if MARK not in text:
        raise AssertionError(f"{fixture} no longer declares {MARK!r}")
    path = folder / f"{fixture.stem}-v2.wat"
    path.write_text(text.replace(MARK, f"(func $v2 (result i32) (i32.const 2))\n    {MARK}"))
    return path


def count(reply: bytes) -> int:
    return int(struct.unpack("<I", reply)[0])


@dataclass
class Callers:
    """``width`` callers asking one at a time; every reply and error kept."""

    system: ActorSystem
    width: int
    replies: list[list[int]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None
    longest: float = 0.0
    total: int = 0
    stamps: list[float] = field(default_factory=list)  # each reply's arrival, in order
    _stop: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _caller(self, mine: list[int]) -> None:
        clock, system = time.perf_counter, self.system
        while not self._stop:
            started = clock()
            try:
                reply = await system.ask(ADDRESS, TICK)
            except AirssysError as exc:
                kind = type(exc).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
                if self.first_error is None:
                    self.first_error = f"{kind}: {str(exc)[:300]}"
                continue
            now = clock()
            self.longest = max(self.longest, now - started)
            self.stamps.append(now)
            mine.append(count(reply))
            self.total += 1

    def start(self) -> None:
        for _ in range(self.width):
            mine: list[int] = []
            self.replies.append(mine)
            self._tasks.append(asyncio.create_task(self._caller(mine)))

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)

    async def until(self, more: int, timeout: float = 120.0) -> None:
        """Until ``more`` replies beyond those had now arrived."""
        target, deadline = self.total + more, time.monotonic() + timeout
        while self.total < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.total - target + more} of {more} replies in {timeout:.0f} s "
                    f"(errors: {self.errors}; the first: {self.first_error})"
                )
            await asyncio.sleep(0.002)


def pause(stamps: list[float], start: float, end: float) -> float:
    """The longest time no reply arrived, from ``start`` to the first reply after ``end``."""
    first = bisect.bisect_left(stamps, start)
    last = bisect.bisect_right(stamps, end)
    inside = [start, *stamps[first:last]]
    inside.append(stamps[last] if last < len(stamps) else end)
    return max(b - a for a, b in pairwise(inside))


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None}
    return {"median": statistics.median(values), "max": max(values)}


async def run(
    data: Path, fixture: Path, v2: Path, durability: dict[str, Any], width: int, between: int
) -> dict[str, Any]:
    switch_ms: list[float] = []
    update_ms: list[float] = []
    call_ms: list[float] = []
    windows: list[tuple[float, float]] = []
    at: list[int] = []
    async with open_system(storage="memory", data_dir=data) as system:
        await system.spawn_component(v2, name="compiled")  # compiles v2: "once compiled"
        await system.spawn_component(fixture, name=ADDRESS[1:], durability=durability)
        load = Callers(system, width)
        load.start()
        try:
            for i in range(SWITCHES):
                await load.until(between)
                at.append(load.total)
                started = time.perf_counter()
                if i % 2 == 0:
                    report = await system.update(ADDRESS, v2, probation=0)
                else:
                    report = await system.rollback(ADDRESS)
                ended = time.perf_counter()
                windows.append((started, ended))
                call_ms.append((ended - started) * 1e3)
                switch_ms.append(report.switch_ms)
                update_ms.append(report.update_ms)
            await load.until(between)
        finally:
            await load.stop()
        final = count(await system.ask(ADDRESS, TICK))
    async with open_system(storage="memory", data_dir=data) as system:
        await system.spawn_component(fixture, name=ADDRESS[1:], durability=durability)
        after_restart = count(await system.ask(ADDRESS, TICK))
    every = [value for mine in load.replies for value in mine]
    acked = len(every)
    distinct = set(every)
    state = final - 1
    return {
        "fixture": fixture.name,
        "snapshot_every": durability.get("snapshot-every", 0),
        "callers": width,
        "updates": (SWITCHES + 1) // 2,
        "rollbacks": SWITCHES // 2,
        "acked": acked,
        "final": final,
        "lost": max(0, acked - state),
        "double": acked - len(distinct),
        "unacked": max(0, state - acked),
        "gaps": sum(1 for n in range(1, final) if n not in distinct),
        "out_of_order": sum(1 for mine in load.replies for a, b in pairwise(mine) if b <= a),
        "errors": load.errors,
        "first_error": load.first_error,
        "after_restart": after_restart,
        "restart_lost": max(0, final + 1 - after_restart),
        "restart_extra": max(0, after_restart - final - 1),
        "switch_ms": {**spread(switch_ms), "all": switch_ms},
        "update_ms": spread(update_ms),
        "call_ms": spread(call_ms),
        "acked_at_switch": at,
        "pause_ms": spread([pause(load.stamps, a, b) * 1e3 for a, b in windows]),
        "ask_max_ms": load.longest * 1e3,
    }


def updates(data: Path, quick: bool) -> dict[str, Any]:
    """Both fixtures: ``{"lost", "double", "restart_lost", "switch_ms", "cases"}``
    (the first four summed, or over every switch, across the fixtures)."""
    width, between = (16, 200) if quick else (16, 2_000)
    cases: dict[str, Any] = {}
    for name, durability in CASES.items():
        folder = data / name
        folder.mkdir(parents=True)
        fixture = FIXTURES / f"{name}.wat"
        v2 = second_version(fixture, folder)
        try:
            cases[name] = asyncio.run(run(folder, fixture, v2, durability, width, between))
        except Exception as exc:  # a figure of its own: the other case still runs
            cases[name] = {
                "fixture": fixture.name,
                "snapshot_every": durability.get("snapshot-every", 0),
                "callers": width,
                "error": f"{type(exc).__name__}: {str(exc)[:500]}",
            }
    ran = [case for case in cases.values() if "error" not in case]
    everything = [ms for case in ran for ms in case["switch_ms"]["all"]]
    return {
        "lost": sum(case["lost"] for case in ran) if ran else None,
        "double": sum(case["double"] for case in ran) if ran else None,
        "restart_lost": sum(case["restart_lost"] for case in ran) if ran else None,
        "switch_ms": spread(everything),
        "cases": cases,
    }


def update_rows(figures: dict[str, Any]) -> list[list[str]]:
    """One table row per fixture (with its settings)."""
    rows = []
    for case in figures["cases"].values():
        settings = [case["fixture"], str(case["snapshot_every"]), str(case["callers"])]
        if "error" in case:
            rows.append([*settings, "failed", case["error"][:60], "", "", "", "", "", ""])
            continue
        switch, whole, pause = case["switch_ms"], case["update_ms"], case["pause_ms"]
        rows.append(
            [
                *settings,
                f"{case['acked']:,}",
                str(case["lost"]),
                str(case["double"]),
                f"{case['unacked']} / {case['out_of_order']} / {sum(case['errors'].values())}",
                f"{switch['median']:.1f} / {switch['max']:.1f}",
                f"{pause['median']:.1f} / {pause['max']:.1f}",
                f"{whole['median']:.0f} / {whole['max']:.0f}",
                f"{case['ask_max_ms']:.1f}",
            ]
        )
    return rows


HEADERS = [
    "fixture",
    "snapshot-every",
    "callers",
    "acked",
    "lost",
    "double",
    "unacked/order/errors",
    "switch_ms med/max",
    "pause_ms med/max",
    "update_ms med/max",
    "ask max ms",
]
