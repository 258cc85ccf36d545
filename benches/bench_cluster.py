"""The cluster over NATS (airssys.cluster), against a real nats-server, in one run:

  * ask throughput (64 in flight) and one caller's p50/p99 to echo.wat: on the same
    node (``local``) and on another node, an ``airssys serve`` subprocess (``remote``);
  * a CPU-bound component (fuel.wat, a large iteration count) placed with
    ``instances = 2``: served by one node, then by two (``scale.two_vs_one``; aim
    >= 1.6x);
  * failover: SIGKILL of the node serving a placed supervisor, to the first ask the
    survivor answers (``failover_ms``; aim <= 2000 ms).

The asking side is this process: an ActorSystem joined to the cluster (it hosts no
placed component). Needs ``nats-server`` on PATH (or /usr/sbin).

    python benches/bench_cluster.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
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

AIM_SCALE = 1.6
AIM_FAILOVER_MS = 2000.0
IN_FLIGHT = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_binary() -> str:
    found = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(found).exists():
        sys.exit("bench_cluster needs nats-server (apt-get install nats-server)")
    return found


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
    results["aims"] = {
        "scale.two_vs_one": f">= {AIM_SCALE}",
        "failover_ms": f"<= {AIM_FAILOVER_MS:g}",
        "scale_met": results["scale"]["two_vs_one"] >= AIM_SCALE,
        "failover_met": results["failover_ms"] <= AIM_FAILOVER_MS,
    }
    return results


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args("airssys.cluster: same-node vs cross-node asks, scale-out, failover", argv)
    quiet_logs()
    results = asyncio.run(run(args.quick))
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
        f"(aim <= {AIM_FAILOVER_MS:g} ms)"
    )


if __name__ == "__main__":
    main()
