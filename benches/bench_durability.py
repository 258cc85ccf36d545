"""Durable components: what the journal costs, and how fast a component recovers.

Measured in one run, side by side (components/fixtures/counter.wat, default
Limits and execution="auto", 64 callers asking with a 2-byte payload; rounds of
the three settings interleaved, medians):

  off       no journal (the default)
  batched   ``[durability] journal = true`` (fsync = "batch", the default when on):
            each message committed to the journal before it is queued, each batch's
            outcomes in one transaction, the log fsynced once per batch
  fsync     ``fsync = "always"``: every accepted message fsynced before it is queued

then recovery, in a fresh system on the same data dir:

  replay.per_s              messages replayed per second (10,000 in the journal)
  recovery_ms.10000         from spawn to the first reply, 10,000 messages journaled
  recovery_ms.10000_snapshot  the same for components/fixtures/durable-counter.wat
                            (exports airssys:component/snapshot; snapshot-every = 1000)

then the journal at its worst case, on a real node (``airssys serve`` in a
subprocess), counted with the bench's own control-socket client (what it sent, what
the node acknowledged, and one ``ask`` of the counter's total after a restart; see
benches/_journal_faults.py):

  corruption.silent_loss    acknowledged messages lost, with no error, after one byte
                            in the middle of the journal is flipped (``detected``: the
                            start failed or the ask was refused instead); ``flips``: the
                            same at fields of the middle records
  diskfull.acked_lost       the data dir on a small tmpfs (root only, else skipped with
                            the reason): sends until the journal hits ENOSPC, the space
                            freed, more sends, a restart: acknowledged and missing
  startup.acked_lost        sends acknowledged while the node replays a long journal,
                            then kill -9, a restart: acknowledged and missing

then hot update of a durable component (issue 22; in process, counted by the bench's
own callers against the final count; see benches/_update_faults.py): a durable counter
asked by 16 concurrent callers across 5 ``system.update(..., probation=0)`` and 5
``system.rollback``, alternately, for components/fixtures/counter.wat (no snapshot
export: the new version replays the journal) and durable-counter.wat
(``snapshot-every = 300``: the serving version's snapshot is handed over):

  update.lost               acknowledged increments missing from the final count
  update.double             counts handed out twice (the state fell back)
  update.restart_lost       missing once the system is opened again on the data dir
  update.switch_ms          median and max of UpdateReport.switch_ms, every switch of
                            both fixtures, the second version compiled beforehand: the
                            fence, from the end of the serving version's last batch to
                            the new version owning the mailbox (the address handles
                            nothing meanwhile); per fixture under update.cases, with
                            update_ms (the whole call: start, with the replay of the
                            whole journal when there is no snapshot export, probe,
                            catch-up rounds beside the serving version, switch) and
                            pause_ms (the longest time no caller got a reply during an
                            update call)

Aims: batched journaling costs <= 25% of throughput (issue 22: batched >= 0.8x off);
recovery of 10,000 messages <= 1 s; no acknowledged message lost in any of the three;
update: 0 lost, 0 double, switch_ms <= 100 once compiled.

    python benches/bench_durability.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec
from airssys.actors import ActorSystem, open_system
from benches._common import FIXTURES, emit_json, machine, parse_args, quiet_logs, table
from benches._journal_faults import faults
from benches._update_faults import HEADERS as UPDATE_HEADERS
from benches._update_faults import update_rows, updates

WIDTH = 64
TICK = codec.encode(b"x", "raw")
SETTINGS: dict[str, dict[str, Any] | None] = {
    "off": None,
    "batched": {"journal": True, "fsync": "batch"},
    "fsync": {"journal": True, "fsync": "always"},
}


async def burst(system: ActorSystem, address: str, n: int) -> float:
    async def caller(count: int) -> None:
        for _ in range(count):
            await system.ask(address, TICK)

    started = time.perf_counter()
    await asyncio.gather(*(caller(n // WIDTH) for _ in range(WIDTH)))
    return (n // WIDTH) * WIDTH / (time.perf_counter() - started)


async def throughput(data: Path, rounds: int, n: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {key: [] for key in SETTINGS}
    async with open_system(storage="memory", data_dir=data) as system:
        for key, durability in SETTINGS.items():
            await system.spawn_component(FIXTURES / "counter.wat", name=key, durability=durability)
            await burst(system, f"/{key}", 2048)  # warm: past the auto probation
        for round_ in range(rounds):
            order = list(SETTINGS)
            order = order[round_ % 3 :] + order[: round_ % 3]
            for key in order:
                rates[key].append(await burst(system, f"/{key}", n))
    return rates


async def fill(data: Path, name: str, source: Path, durability: dict[str, Any], n: int) -> int:
    async with open_system(storage="memory", data_dir=data, name=name) as system:
        await system.spawn_component(source, name="c", durability=durability, mailbox=100_000)
        for _ in range(n - 1):
            system.send("/c", TICK)
        last = await system.ask("/c", TICK)
    return int(struct.unpack("<I", last)[0])


async def recover(
    data: Path, name: str, source: Path, durability: dict[str, Any]
) -> tuple[float, int]:
    async with open_system(storage="memory", data_dir=data, name=name) as system:
        started = time.perf_counter()
        await system.spawn_component(source, name="c", durability=durability, mailbox=100_000)
        reply = await system.ask("/c", TICK)
        elapsed = time.perf_counter() - started
    return elapsed, int(struct.unpack("<I", reply)[0])


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    rounds, n = (3, 6_400) if args.quick else (7, 32_000)
    messages = 10_000
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rates = asyncio.run(throughput(data / "rates", rounds, n))
        plain = {"journal": True}
        asyncio.run(fill(data, "replay", FIXTURES / "counter.wat", plain, messages))
        replay_s, count = asyncio.run(recover(data, "replay", FIXTURES / "counter.wat", plain))
        assert count == messages + 1, count
        snapshot_ms: float | None = None
        durable_counter = FIXTURES / "durable-counter.wat"
        if durable_counter.exists():
            snap = {"journal": True, "snapshot-every": 1000}
            asyncio.run(fill(data, "snap", durable_counter, snap, messages))
            snap_s, count = asyncio.run(recover(data, "snap", durable_counter, snap))
            assert count == messages + 1, count
            snapshot_ms = snap_s * 1e3
        update = updates(data / "update", args.quick)
    per_s = {key: statistics.median(values) for key, values in rates.items()}
    worst = faults(args.quick)
    result = {
        "benchmark": "durability",
        "quick": args.quick,
        "settings": "counter.wat, default Limits, execution=auto, 64 callers asking",
        "journal": {
            "per_s": per_s,
            "cost_pct": {
                key: (per_s["off"] / per_s[key] - 1) * 100 for key in ("batched", "fsync")
            },
            "rounds": rates,
        },
        "replay": {"per_s": messages / replay_s},
        "recovery_ms": {"10000": replay_s * 1e3, "10000_snapshot": snapshot_ms},
        **worst,
        "update": update,
        "aims": {
            "batched_cost_pct": 25,
            "recovery_ms_10000": 1000,
            "corruption_silent_loss": 0,
            "diskfull_acked_lost": 0,
            "startup_acked_lost": 0,
            "batched_vs_off": 0.8,
            "update_lost": 0,
            "update_double": 0,
            "update_switch_ms": 100,
        },
        "machine": machine(),
    }
    if args.json:
        emit_json(result)
        return
    cost = result["journal"]["cost_pct"]
    print(f"durability ({result['settings']}; median of {rounds} interleaved rounds)")
    print(
        table(
            ["setting", "asks/s", "vs off"],
            [
                ["journal off (default)", f"{per_s['off']:,.0f}", "1.00x"],
                [
                    'journal, fsync="batch"',
                    f"{per_s['batched']:,.0f}",
                    f"{per_s['batched'] / per_s['off']:.2f}x ({cost['batched']:+.0f}% cost)",
                ],
                [
                    'journal, fsync="always"',
                    f"{per_s['fsync']:,.0f}",
                    f"{per_s['fsync'] / per_s['off']:.2f}x ({cost['fsync']:+.0f}% cost)",
                ],
            ],
        )
    )
    print(
        f"replay: {messages / replay_s:,.0f} messages/s; recovery of {messages:,}: "
        f"{replay_s * 1e3:.0f} ms"
        + (f", with snapshots: {snapshot_ms:.0f} ms" if snapshot_ms is not None else "")
    )
    print(worst_case(worst))
    print(
        "hot update under load (5 updates, 5 rollbacks, probation=0; "
        "unacked/order/errors: increments nobody got a reply for / replies out of a "
        "caller's order / failed asks)"
    )
    print(table(UPDATE_HEADERS, update_rows(update)))
    print(
        "aims: batched journaling costs <= 25% (>= 0.8x off); recovery of 10,000 messages "
        "<= 1 s; no acknowledged message lost (corruption, full disk, start-up); update: "
        "0 lost, 0 double, switch_ms <= 100"
    )


def worst_case(worst: dict[str, Any]) -> str:
    """The three worst cases in a few lines."""
    lines = []
    corrupt = worst["corruption"]
    if "error" in corrupt:
        lines.append(f"corruption: the bench failed: {corrupt['error']}")
    else:
        lines.append(
            f"corruption (one byte flipped mid-journal, {corrupt['acked']:,} acknowledged): "
            f"{corrupt['silent_loss']} lost silently, detected: {corrupt['detected']}; "
            f"worst over {len(corrupt['flips'])} flip points: {corrupt['silent_loss_worst']}"
        )
    full = worst["diskfull"]
    if "skipped" in full or "error" in full:
        lines.append(f"full disk: {full.get('skipped') or 'the bench failed: ' + full['error']}")
    else:
        lines.append(
            f"full disk ({full['acked']:,} acknowledged, "
            f"{full['while_full']['refused']:,} refused while full): "
            f"{full['acked_lost']} acknowledged and lost"
        )
    start = worst["startup"]
    if "error" in start:
        lines.append(f"start-up: the bench failed: {start['error']}")
    else:
        lines.append(
            f"start-up ({start['prefill']:,} in the journal; {start['acked_before_ready']:,} "
            f"acknowledged before ready, then kill -9): {start['acked_lost']} lost"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
