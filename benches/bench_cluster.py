"""The cluster over NATS (airssys.cluster), against real nats-servers, in one run:

  * ask throughput (64 in flight) and one caller's p50/p99 to echo.wat: on the same
    node (``local``) and on another node, an ``airssys serve`` subprocess (``remote``);
  * a CPU-bound component (fuel.wat, a large iteration count) placed with
    ``instances = 2``: served by one node, then by two (``scale.two_vs_one``; aim
    >= 1.6x);
  * failover: SIGKILL of the node serving a placed supervisor, to the first ask the
    survivor answers (``failover_ms``; aim <= 2000 ms).

The asking side of those is this process: an ActorSystem joined to the cluster (it
hosts no placed component), over one nats-server.

Then placed durable components with their journals in JetStream (issue 30; see
benches/_jetstream_faults.py), over three nats-servers with JetStream started here on
loopback ports (each with a store of its own, ``--no_advertise=true``), the nodes
``airssys serve`` subprocesses with data dirs of their own, counted by the bench's own
callers through the nodes' control sockets:

  * ``journal.local_per_s`` and ``journal.jetstream_per_s``: counter.wat durable in
    this process, 64 asks in flight, its journal local or in JetStream (3 replicas),
    interleaved rounds, medians; ``journal.ratio`` (aim >= 0.5x), and what bounds it:
    batches, messages per batch, the time each batch's write took and its share of
    the run, a lone publish round trip through ``Bridge.call``;
  * ``durable.failover_ms``: SIGKILL of the node that owns a placed durable counter
    under load, to the first answer to an ask sent after it (aim <= 2000 ms);
    ``durable.failover_lost``: acknowledged increments missing from the final count
    (aim 0), ``durable.double``: counts handed out twice (aim 0);
  * ``partition.second_writer``: the owner cut off from NATS (its only server
    stopped) while the other node takes over under load, then healed and asked
    through its own socket while it still runs the counter; messages the journal's
    subject holds from an owner older than a takeover before them (aim 0);
  * ``pause.second_writer``: the same when the owner is frozen (SIGSTOP) instead,
    its NATS connections open, and resumed (SIGCONT) after the takeover.

Needs ``nats-server`` on PATH (or /usr/sbin).

    python benches/bench_cluster.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec
from airssys.actors import ActorSystem, open_system
from airssys.cluster import Cluster, join_cluster
from benches._common import FIXTURES, ROOT, emit_json, machine, parse_args, quiet_logs, table
from benches._jetstream_faults import faults, free_port, nats_binary

AIM_SCALE = 1.6
AIM_FAILOVER_MS = 2000.0
AIM_JOURNAL_RATIO = 0.5
IN_FLIGHT = 64


class Node:
    """``airssys serve`` in a subprocess."""

    def __init__(self, where: Path, name: str, url: str, body: str) -> None:
        here = where / name
        here.mkdir()
        self.run_dir = here / "run"
        path = here / "deployment.toml"
        path.write_text(
            f'[node]\nname = "{name}"\nrun-dir = "{self.run_dir}"\nstorage = "memory"\n'
            f'data-dir = "{where / "data"}"\nshutdown-timeout = 5\n\n{body}\n'
            f'[cluster]\nurl = "{url}"\nnode = "{name}"\n'
        )
        self.log = (here / "stderr").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airssys.cli", "serve", str(path), "--quiet"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=ROOT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while not (self.run_dir / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node did not start: {self.log.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def supervisor(name: str, cid: str, fixture: str, extra: str = "") -> str:
    return (
        f'[[supervisor]]\nname = "{name}"\n{extra}\n[[supervisor.component]]\n'
        f'id = "{cid}"\nmanifest = "{FIXTURES / f"{fixture}.wat"}"\n'
    )


async def until_served(cluster: Cluster, address: str, nodes: list[str]) -> None:
    deadline = time.monotonic() + 60
    while cluster.where(address) != nodes:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address} not served by {nodes}: {cluster.where(address)}")
        await asyncio.sleep(0.02)


async def throughput(system: ActorSystem, address: str, payload: bytes, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await system.ask(address, payload, timeout=30)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
    return done / (time.perf_counter() - start)


async def latencies(system: ActorSystem, address: str, payload: bytes, n: int) -> list[float]:
    for _ in range(50):
        await system.ask(address, payload)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await system.ask(address, payload)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def cpu_throughput(
    system: ActorSystem, payload: bytes, seconds: float, callers: int
) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await system.ask("/pool/fuel", payload, timeout=30)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - start)


async def run(quick: bool) -> dict[str, Any]:
    seconds = 1.5 if quick else 5.0
    where = Path(tempfile.mkdtemp(prefix="airssys-bench-cluster-"))
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = subprocess.Popen(
        [nats_binary(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nodes: list[Node] = []
    results: dict[str, Any] = {"machine": machine(), "cpus": os.cpu_count()}
    try:
        time.sleep(0.3)
        pool = supervisor("pool", "fuel", "fuel", 'instances = 2\nnode = ["b", "c"]')
        b = Node(where, "b", url, supervisor("svc", "echo", "echo") + pool)
        nodes.append(b)
        b.wait_ready()
        async with open_system("a", storage="memory") as system:
            await system.spawn_component(FIXTURES / "echo.wat", name="echo")
            async with join_cluster(system, url, node="a") as cluster:
                await until_served(cluster, "/svc/echo", ["b"])
                payload = codec.encode(b"x" * 64, "raw")
                n_lat = 500 if quick else 3000
                local = await throughput(system, "/echo", payload, seconds)
                remote = await throughput(system, "/svc/echo", payload, seconds)
                local_lat = await latencies(system, "/echo", payload, n_lat)
                remote_lat = await latencies(system, "/svc/echo", payload, n_lat)
                results["local"] = {
                    "per_s": round(local),
                    "p50_ms": round(pct(local_lat, 50), 3),
                    "p99_ms": round(pct(local_lat, 99), 3),
                }
                results["remote"] = {
                    "per_s": round(remote),
                    "p50_ms": round(pct(remote_lat, 50), 3),
                    "p99_ms": round(pct(remote_lat, 99), 3),
                }

                # CPU-bound: one node serving, then two
                await until_served(cluster, "/pool/fuel", ["b"])
                iterations = 3_000_000
                while True:  # about 20 ms of work per message
                    work = codec.encode(struct.pack("<I", iterations), "raw")
                    t0 = time.perf_counter()
                    await system.ask("/pool/fuel", work, timeout=30)
                    if time.perf_counter() - t0 > 0.02 or iterations > 400_000_000:
                        break
                    iterations *= 2
                one = await cpu_throughput(system, work, seconds * 2, 8)
                c = Node(where, "c", url, pool)
                nodes.append(c)
                c.wait_ready()
                await until_served(cluster, "/pool/fuel", ["b", "c"])
                two = await cpu_throughput(system, work, seconds * 2, 8)
                results["scale"] = {
                    "iterations": iterations,
                    "one_per_s": round(one, 1),
                    "two_per_s": round(two, 1),
                    "two_vs_one": round(two / one, 2),
                }

                # failover: q serves /work, p takes it over after q's SIGKILL
                work_sup = supervisor("work", "echo", "echo", 'node = ["q", "p"]')
                p = Node(where, "p", url, work_sup)
                q = Node(where, "q", url, work_sup)
                nodes += [p, q]
                p.wait_ready()
                q.wait_ready()
                await until_served(cluster, "/work/echo", ["q"])
                q.proc.send_signal(signal.SIGKILL)
                killed = time.perf_counter()
                q.proc.wait()
                while True:
                    try:
                        await system.ask("/work/echo", payload, timeout=0.2)
                        if cluster.where("/work/echo") == ["p"]:
                            break
                    except Exception:
                        await asyncio.sleep(0.01)
                results["failover_ms"] = round((time.perf_counter() - killed) * 1000, 1)
    finally:
        for node in reversed(nodes):
            node.stop()
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        shutil.rmtree(where, ignore_errors=True)
    return results


def aims(results: dict[str, Any]) -> dict[str, Any]:
    """Each aim, and whether this run met it (None: its scenario failed)."""
    durable, cut, journal = results["durable"], results["partition"], results["journal"]

    def met(section: dict[str, Any], key: str, ok: Any) -> bool | None:
        return None if key not in section else bool(ok(section[key]))

    return {
        "scale.two_vs_one": f">= {AIM_SCALE}",
        "failover_ms": f"<= {AIM_FAILOVER_MS:g}",
        "durable.failover_ms": f"<= {AIM_FAILOVER_MS:g}",
        "durable.failover_lost": "0 (and durable.double 0)",
        "partition.second_writer": "0",
        "pause.second_writer": "0",
        "journal.ratio": f">= {AIM_JOURNAL_RATIO}",
        "scale_met": results["scale"]["two_vs_one"] >= AIM_SCALE,
        "failover_met": results["failover_ms"] <= AIM_FAILOVER_MS,
        "durable_failover_met": met(durable, "failover_ms", lambda v: v <= AIM_FAILOVER_MS),
        "durable_lost_met": met(
            durable, "failover_lost", lambda v: v == 0 and durable["double"] == 0
        ),
        "second_writer_met": met(cut, "second_writer", lambda v: v == 0),
        "pause_second_writer_met": met(results["pause"], "second_writer", lambda v: v == 0),
        "journal_met": met(journal, "ratio", lambda v: v >= AIM_JOURNAL_RATIO),
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(
        "airssys.cluster: same-node vs cross-node asks, scale-out, failover, durable "
        "journals in JetStream",
        argv,
    )
    quiet_logs()
    results = asyncio.run(run(args.quick))
    results.update(faults(args.quick))
    results["aims"] = aims(results)
    if args.json:
        emit_json(results)
        return
    local, remote, scale = results["local"], results["remote"], results["scale"]
    print(
        table(
            ("ask (64 B)", "per s (64 in flight)", "p50 ms", "p99 ms"),
            [
                ("same node", str(local["per_s"]), str(local["p50_ms"]), str(local["p99_ms"])),
                ("other node", str(remote["per_s"]), str(remote["p50_ms"]), str(remote["p99_ms"])),
            ],
        )
    )
    print(
        f"\nfuel.wat x{scale['iterations']}: one node {scale['one_per_s']}/s, two nodes "
        f"{scale['two_per_s']}/s: {scale['two_vs_one']}x (aim >= {AIM_SCALE}x) "
        f"[{results['cpus']} CPUs]"
    )
    print(
        f"failover (SIGKILL to the survivor's first answer): {results['failover_ms']} ms "
        f"(aim <= {AIM_FAILOVER_MS:g} ms)\n"
    )
    print(jetstream_report(results))


def jetstream_report(results: dict[str, Any]) -> str:
    """The rows of issue 30, each with its settings, then what bounds them."""
    journal, durable, cut = results["journal"], results["durable"], results["partition"]
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    if "error" in journal:
        rows.append(("journal", "failed", "", journal["error"][:200]))
    else:
        how = f"counter.wat in process, {IN_FLIGHT} in flight, medians"
        rows.append(("journal.local_per_s", f"{journal['local_per_s']:,}", "", how))
        rows.append(
            (
                "journal.jetstream_per_s",
                f"{journal['jetstream_per_s']:,} ({journal['ratio']:.2f}x)",
                f">= {AIM_JOURNAL_RATIO}x",
                "the same, 3 servers, replicas 3",
            )
        )
        batches, rtt = journal["jetstream_batches"], journal["publish_rtt_ms"]
        notes.append(
            f"JetStream journal: {batches['count']:,} batches of "
            f"{batches['messages_per_batch']} messages ({batches['bytes_per_batch']:,} B), "
            f"each batch's write {batches['write_ms_per_batch']} ms, "
            f"{batches['write_share']:.0%} of the run (on the event loop: "
            f"{batches['on_loop']}); a lone publish of {rtt['bytes']:,} B through "
            f"Bridge.call: p50 {rtt['p50']} ms, p90 {rtt['p90']} ms. Local journal: "
            f"{journal['local_batches']['write_ms_per_batch']} ms per batch. One publish "
            "round trip per batch, waited for before the next batch runs, bounds it: "
            f"at most {IN_FLIGHT} messages / (round trip + handling)."
        )
    if "error" in durable:
        rows.append(("durable", "failed", "", durable["error"][:200]))
    else:
        how = "2 nodes, own data dirs; 8 callers via p's socket; kill -9 of the owner"
        rows.append(
            ("durable.failover_ms", str(durable["failover_ms"]), f"<= {AIM_FAILOVER_MS:g}", how)
        )
        rows.append(
            (
                "durable.failover_lost",
                f"{durable['failover_lost']} (double {durable['double']})",
                "0",
                f"of {durable['acked']:,} acknowledged; final count {durable['final']:,}",
            )
        )
        seen = durable["successor_log"]
        notes.append(
            f"failover: the successor saw the owner leave its view at {seen['left_view_ms']} "
            f"ms (heartbeats), started the supervisor (lease taken, journal read from the "
            f"stream, replayed) at {seen['placed_ms']} ms, answered at "
            f"{durable['failover_ms']} ms; {durable['errors']} asks failed meanwhile; "
            f"ambiguous counts resolved: {durable['ambiguous']}, unreadable: "
            f"{durable['unknown']}"
        )
    if "error" in cut:
        rows.append(("partition", "failed", "", cut["error"][:200]))
    else:
        rows.append(
            (
                "partition.second_writer",
                str(cut["second_writer"]),
                "0",
                f"owner's only server stopped, healed, asked; {cut['messages']:,} "
                f"messages, {cut['takeovers']} takeovers",
            )
        )
        seen = cut["logs"]
        notes.append(
            f"partition: the successor answered {cut['takeover_ms']} ms after the cut "
            f"(started the supervisor at {seen['successor_placed_ms']} ms); healed at "
            f"{cut['healed_ms']} ms; the cut node's fence refusals: "
            f"{seen['cut_node_fenced']['appends']} appends, "
            f"{seen['cut_node_fenced']['opens']} opens; it gave its lease up at "
            f"{seen['cut_node_lost_lease_ms']} ms; lost {cut['lost']}, double "
            f"{cut['double']} of {cut['acked']:,} acknowledged (through both nodes)"
        )
    paused = results["pause"]
    if "error" in paused:
        rows.append(("pause", "failed", "", paused["error"][:200]))
    else:
        rows.append(
            (
                "pause.second_writer",
                str(paused["second_writer"]),
                "0",
                f"owner SIGSTOPped, resumed after the takeover, asked; "
                f"{paused['messages']:,} messages, {paused['takeovers']} takeovers",
            )
        )
        notes.append(
            f"pause: the successor answered {paused['takeover_ms']} ms after the SIGSTOP; "
            f"the owner, resumed at {paused['paused_ms']} ms, learnt it lost its lease at "
            f"{paused['paused_node_lost_lease_ms']} ms; fence refusals: "
            f"{paused['paused_node_fenced']['appends']} appends, "
            f"{paused['paused_node_fenced']['opens']} opens; lost {paused['lost']}, double "
            f"{paused['double']} of {paused['acked']:,} acknowledged"
        )
    out = table(("issue 30", "figure", "aim", "settings"), rows)
    return out + "\n" + "\n".join(notes)


if __name__ == "__main__":
    main()
