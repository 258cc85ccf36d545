"""Placed durable components with their journals in JetStream, measured from outside
(issue 30; the rows ``durable``, ``partition`` and ``journal`` of bench_cluster.py).

Three ``nats-server`` processes with JetStream on loopback ports, routed to each
other, each with a store of its own and ``--no_advertise=true`` (a client uses only
the URLs it was given, so stopping a node's only server cuts that node off):

  journal     counter.wat in this process, default durability settings, 64 asks in
              flight: its journal local (the segment file) or in JetStream (the
              stream with 3 replicas, through a Bridge), interleaved rounds, medians;
              with what bounds the JetStream one: batches written, messages per batch,
              the time each batch's write took, and a lone publish through
              ``Bridge.call`` (a round trip to the stream's leader and its quorum)
  durable     two ``airssys serve`` nodes, each with a data dir of its own, serving a
              placed durable counter (``node = ["q", "p"]``, ``[cluster] journal =
              "jetstream"``, ``replicas = 3``); callers ask it through p's control
              socket; SIGKILL of the node that owns it under load. ``failover_ms``:
              from the SIGKILL to the first answer to an ask sent after it;
              ``failover_lost``: acknowledged increments the final count does not
              hold; ``double``: counts handed out twice (the state fell back)
  partition   the same two nodes, each joined through one server only, the lease
              6 s; the owner's server stopped (the owner is cut off from NATS, not
              from its own callers) while the other takes over under load; the
              server started again at once and the cut node asked through its own
              socket while it still runs the counter (its next append must be
              refused: ``cut_node_fenced``). Then the journal's subject is read back:
              ``second_writer`` counts messages appended, after a takeover, by an
              owner older than that takeover (``airssys-owner`` lower than the
              ``airssys-takeover`` before it)
  pause       the same, the owner frozen with SIGSTOP (its NATS connections stay
              open) and resumed with SIGCONT after the takeover, asked through its
              own socket too

The lease (renewed on the cluster's connection) usually tells the old owner first;
``cut_node_fenced`` / ``paused_node_fenced`` say when the stream's own fence (the
expected last subject sequence, the takeover record) refused it instead. The
scenarios reuse one subject: each empties it first.

**Reading the count.** The counter answers 4 bytes, its count little-endian; the
control socket's ``ask`` shows a reply decoded when its first bytes read as a
multicodec prefix (0x55 raw, 0x51 CBOR, non-minimal varints of those, ...), so
count 0x1951 (``51 19 00 00``) shows as CBOR 0. The bench inverts the node's own
rendering (``airssys.node._node._reply``): every count whose low byte can start such
a prefix is rendered once, up to 2**22, and a shown reply is looked up; the few
renderings two counts share (CBOR 0 is 0x1951 and 0x80d1) are resolved to the
candidate nearest the same caller's previous count, and counted (``ambiguous``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from airssys import codec
from airssys.actors import ActorSystem, open_system
from airssys.cluster._jetstream import (
    JOURNAL_STREAM,
    OWNER,
    TAKEOVER,
    Bridge,
    JetStreamJournal,
    ensure_stream,
    journal_subject,
)
from airssys.durability import Journal, journal_path
from airssys.errors import AirssysError
from airssys.manifest import DurabilitySpec
from airssys.node import ControlClient
from airssys.node._node import _reply  # how the control socket shows a reply
from benches._common import FIXTURES, ROOT

__all__ = (
    "NatsCluster",
    "durable_failover",
    "faults",
    "free_port",
    "journal_throughput",
    "nats_binary",
    "partition",
    "pause",
)

ADDRESS: Final = "/work/counter"
SUBJECT: Final = journal_subject(ADDRESS)
WIDTH: Final = 64
TICK: Final = codec.encode(b"x", "raw")
LEASE: Final = 3.0
RENEW: Final = 1.0
PARTITION_LEASE: Final = 6.0
"""The cut node gives its lease up 5 s after its last renewal: it still runs the
counter when it is healed, after its successor (heartbeats: 1.6 s) took over."""
HEALED_ASK: Final = 0.3
"""Seconds from the heal to the cut node's callers: its journal's NATS connection is
back (retried every 0.25 s); asked before, its journal breaks on the missing
connection instead of meeting the fence."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` free loopback ports, all different (each socket held until all are found)."""
    held: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def nats_binary() -> str:
    found = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(found).exists():
        sys.exit("bench_cluster needs nats-server (apt-get install nats-server)")
    return found


def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not in {timeout:g} s")
        time.sleep(0.02)


# --- NATS: three servers with JetStream ------------------------------------------------


class NatsCluster:
    """Three nats-servers with JetStream on loopback, routed to each other; each one
    stopped and started again on its own ports and store."""

    def __init__(self, where: Path, size: int = 3) -> None:
        self.binary = nats_binary()
        every = free_ports(2 * size)  # a client port equal to a route port fails a start
        self.ports, routes = every[:size], every[size:]
        self.where = where
        self.args: list[list[str]] = []
        for n, (port, route) in enumerate(zip(self.ports, routes, strict=True)):
            store = where / f"nats-{n}"
            store.mkdir(parents=True)
            others = ",".join(f"nats://127.0.0.1:{r}" for r in routes if r != route)
            self.args.append(
                [
                    self.binary, "-a", "127.0.0.1", "-p", str(port), "-js",
                    "-sd", str(store), "-n", f"s{n}", "--cluster_name", "airssys-bench",
                    "--cluster", f"nats://127.0.0.1:{route}", "--routes", others,
                    "--no_advertise=true",
                ]
            )  # fmt: skip
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    def url(self, n: int) -> str:
        return f"nats://127.0.0.1:{self.ports[n]}"

    @property
    def urls(self) -> list[str]:
        return [self.url(n) for n in range(len(self.ports))]

    def start(self, n: int | None = None) -> None:
        for i in range(len(self.ports)) if n is None else [n]:
            log = (self.where / f"nats-{i}.log").open("ab")
            with log:
                self.procs[i] = subprocess.Popen(
                    self.args[i], stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
        for i in range(len(self.ports)) if n is None else [n]:
            poll(lambda i=i: self._answers(i), 20, f"nats-server {i} ready")  # type: ignore[misc]

    def _answers(self, n: int) -> bool:
        proc = self.procs[n]
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"nats-server {n} exited: see {self.where}/nats-{n}.log")
        try:
            with socket.create_connection(("127.0.0.1", self.ports[n]), timeout=0.5) as sock:
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def stop(self, n: int | None = None) -> None:
        for i in range(len(self.ports)) if n is None else [n]:
            proc, self.procs[i] = self.procs[i], None
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def wait_for_jetstream(self, timeout: float = 60.0) -> None:
        """Until a stream with three replicas can be made (a meta leader is elected)."""
        import nats

        async def probe() -> None:
            deadline = time.monotonic() + timeout
            last: Exception | None = None
            while time.monotonic() < deadline:
                try:
                    nc = await nats.connect(self.urls, connect_timeout=2)
                except Exception as exc:
                    last = exc
                    await asyncio.sleep(0.2)
                    continue
                try:
                    js = nc.jetstream(timeout=2)
                    await js.add_stream(
                        name="PROBE", subjects=["probe"], num_replicas=len(self.ports)
                    )
                    await js.delete_stream("PROBE")
                    return
                except Exception as exc:
                    last = exc
                    await asyncio.sleep(0.3)
                finally:
                    await nc.close()
            raise RuntimeError(f"JetStream not ready in {timeout:g} s: {last!r}")

        asyncio.run(probe())


# --- the journal in process: local and in JetStream ------------------------------------


class _Tally:
    """What a journal wrote: batches (``record``), their messages, seconds in writes."""

    def __init__(self) -> None:
        self.batches = 0
        self.messages = 0
        self.written = 0
        self.write_s = 0.0

    def reset(self) -> None:
        self.batches = self.messages = self.written = 0
        self.write_s = 0.0


class _LocalTallied(Journal):
    def __init__(self, path: Path, tally: _Tally) -> None:
        self.tally = tally
        super().__init__(path)

    def record(self, handled: Sequence[Any]) -> bytes:
        self.tally.batches += 1
        self.tally.messages += len(handled)
        return super().record(handled)

    def _write(self, data: bytes) -> None:
        started = time.perf_counter()
        super()._write(data)
        self.tally.write_s += time.perf_counter() - started
        self.tally.written += len(data)


class _StreamTallied(JetStreamJournal):
    def __init__(self, path: Path, tally: _Tally, **kwargs: Any) -> None:
        self.tally = tally
        super().__init__(path, **kwargs)

    def record(self, handled: Sequence[Any]) -> bytes:
        self.tally.batches += 1
        self.tally.messages += len(handled)
        return super().record(handled)

    def _write(self, data: bytes) -> None:
        started = time.perf_counter()
        super()._write(data)
        self.tally.write_s += time.perf_counter() - started
        self.tally.written += len(data)


async def _burst(system: ActorSystem, address: str, n: int) -> float:
    async def caller(count: int) -> None:
        for _ in range(count):
            await system.ask(address, TICK, timeout=30)

    started = time.perf_counter()
    await asyncio.gather(*(caller(n // WIDTH) for _ in range(WIDTH)))
    return (n // WIDTH) * WIDTH / (time.perf_counter() - started)


def _publish_rtt(bridge: Bridge, size: int, n: int) -> list[float]:
    """Milliseconds of one ``Bridge.call`` of a publish of ``size`` bytes (acknowledged
    by the stream: its leader and a quorum of its replicas), ``n`` times."""
    body = bytes(size)

    async def publish() -> None:
        await bridge.js.publish("airssys.journal.bench.rtt", body)

    samples = []
    for _ in range(n):
        started = time.perf_counter()
        bridge.call(publish)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def journal_throughput(cluster: NatsCluster, where: Path, quick: bool) -> dict[str, Any]:
    """counter.wat durable, 64 in flight, its journal local vs in JetStream (replicas 3)."""
    rounds, n = (5, 8192) if quick else (9, 16384)
    spec = DurabilitySpec(journal=True)
    tallies = {"local": _Tally(), "jetstream": _Tally()}
    rates: dict[str, list[float]] = {"local": [], "jetstream": []}
    bridge = await asyncio.to_thread(lambda: Bridge(cluster.urls, name="bench"))
    try:
        await asyncio.to_thread(bridge.call, lambda: ensure_stream(bridge.js, 3), 30.0)
        data = where / "journal-data"
        async with open_system("bench", storage="memory", data_dir=data) as system:
            system.open_journal(
                "/local",
                spec,
                journal=_LocalTallied(journal_path(data, "bench", "/local"), tallies["local"]),
            )
            stream = await asyncio.to_thread(
                lambda: _StreamTallied(
                    data / "jetstream.journal",
                    tallies["jetstream"],
                    bridge=bridge,
                    address="/jetstream",
                    owner=1,
                )
            )
            system.open_journal("/jetstream", spec, journal=stream)
            for key in rates:
                await system.spawn_component(FIXTURES / "counter.wat", name=key, durability=spec)
                await _burst(system, f"/{key}", 2048)  # warm: past the auto probation
            spent = {key: 0.0 for key in rates}
            for tally in tallies.values():
                tally.reset()
            for round_ in range(rounds):
                for key in ("local", "jetstream") if round_ % 2 else ("jetstream", "local"):
                    started = time.perf_counter()
                    rates[key].append(await _burst(system, f"/{key}", n))
                    spent[key] += time.perf_counter() - started
            on_loop = {key: (await system.health(f"/{key}")).on_loop for key in rates}
        stream_tally = tallies["jetstream"]
        size = stream_tally.written // max(stream_tally.batches, 1)  # a batch's record
        rtt = await asyncio.to_thread(_publish_rtt, bridge, size, 100 if quick else 400)
    finally:
        await asyncio.to_thread(bridge.close)
    local, stream_ = statistics.median(rates["local"]), statistics.median(rates["jetstream"])
    result: dict[str, Any] = {
        "settings": f"counter.wat, DurabilitySpec defaults, {WIDTH} in flight, {rounds} "
        f"interleaved rounds of {n} asks, medians; JetStream: 3 servers, replicas 3",
        "local_per_s": round(local),
        "jetstream_per_s": round(stream_),
        "ratio": round(stream_ / local, 2),
        "publish_rtt_ms": {
            "bytes": size,
            "p50": round(statistics.median(rtt), 3),
            "p90": round(_pct(rtt, 90), 3),
        },
    }
    for key, tally in tallies.items():
        batches = max(tally.batches, 1)
        result[f"{key}_batches"] = {
            "count": tally.batches,
            "messages_per_batch": round(tally.messages / batches, 1),
            "bytes_per_batch": tally.written // batches,
            "write_ms_per_batch": round(tally.write_s * 1000 / batches, 3),
            "write_share": round(tally.write_s / spent[key], 2),
            "on_loop": on_loop[key],
        }
    return result


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# --- nodes, and reading the count they show -------------------------------------------


class ServeNode:
    """``airssys serve`` in a subprocess, with a run dir and a data dir of its own."""

    def __init__(
        self, where: Path, name: str, url: str, lease: float = LEASE, renew: float = RENEW
    ) -> None:
        here = where / name
        here.mkdir(parents=True)
        self.name = name
        self.run_dir = here / "run"
        self.socket = self.run_dir / "control.sock"
        self.log_path = here / "stderr"
        path = here / "deployment.toml"
        path.write_text(
            f'[node]\nname = "{name}"\nrun-dir = "{self.run_dir}"\n'
            f'data-dir = "{here / "data"}"\nstorage = "memory"\nshutdown-timeout = 10\n\n'
            f'[[supervisor]]\nname = "work"\nnode = ["q", "p"]\n\n'
            f'[[supervisor.component]]\nid = "counter"\n'
            f'manifest = "{FIXTURES / "counter.wat"}"\ndurability = {{ journal = true }}\n\n'
            f'[cluster]\nurl = "{url}"\nnode = "{name}"\njournal = "jetstream"\n'
            f"replicas = 3\nlease = {lease}\nrenew = {renew}\n"
        )
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airssys.cli", "serve", str(path), "--json-logs"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=ROOT,
        )

    def request(self, op: str, **fields: Any) -> Any:
        with ControlClient(self.socket, timeout=10) as client:
            return client.request(op, **fields)

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: {self.log_path}")
            return (self.run_dir / "ready").exists()

        poll(ready, 180, f"node {self.name} ready")

    def serving(self) -> list[str]:
        """Where this node sees the durable counter served."""
        try:
            found: dict[str, list[str]] = self.request("cluster")["addresses"]
        except AirssysError:
            return []
        return found.get(ADDRESS, [])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def records(node: ServeNode) -> list[tuple[float, dict[str, Any]]]:
    """The node's JSON log records, each with its wall-clock time."""
    found = []
    for line in node.log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue  # nats-py's own tracebacks go to stderr as plain text
        try:
            record = json.loads(line)
            found.append((datetime.fromisoformat(record["timestamp"]).timestamp(), record))
        except (ValueError, KeyError):
            continue
    return found


def logged_ms(
    node: ServeNode, event: str, since: float, fields: dict[str, str] | None = None
) -> float | None:
    """Milliseconds from ``since`` (a wall-clock time) to the first record ``event`` (with
    ``fields``) in the node's JSON log at or after it; None when there is none."""
    for at, record in records(node):
        if (
            record.get("event") == event
            and at >= since
            and all(record.get(k) == v for k, v in (fields or {}).items())
        ):
            return round((at - since) * 1000, 1)
    return None


def fenced(node: ServeNode) -> dict[str, int]:
    """What the fence refused the node, from its log: appends (its journal "taken over
    by another node": the stream's expected last sequence did not hold) and opens
    (the subject "belongs to a newer owner": a takeover newer than its lease)."""
    appends = opens = 0
    for _at, record in records(node):
        error = str(record.get("error", ""))
        if record.get("event") == "restarting" and "taken over by another node" in error:
            appends += 1
        elif "belongs to a newer owner" in error:
            opens += 1
    return {"appends": appends, "opens": opens}


def _shown(reply: Any) -> str:
    return json.dumps(reply, sort_keys=True)


class CountReader:
    """The counter's count from a reply as the control socket shows it (see the module
    docstring): a count whose bytes read as no multicodec prefix is shown as its 4
    bytes; the others are looked up among the node's own renderings."""

    LIMIT: Final = 1 << 22

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}
        starts = (0x51, 0xD1, 0x55, 0xD5, 0x80, 0x81)  # CBOR, raw, JSON/MessagePack
        for high in range(self.LIMIT >> 8):
            for low in starts:
                count = high << 8 | low
                shown = _reply(struct.pack("<I", count))
                if shown["codec"] is not None:
                    self._counts.setdefault(_shown(shown), []).append(count)

    def candidates(self, reply: dict[str, Any]) -> list[int]:
        if reply.get("codec") is None:
            data = base64.b64decode(reply["value"]["$bytes"])
            if len(data) == 4:
                return [int(struct.unpack("<I", data)[0])]
        return list(self._counts.get(_shown(reply), []))


# --- load through a node's control socket ----------------------------------------------


class Load:
    """Callers asking the durable counter through nodes' control sockets, each on a
    connection of its own; every reply kept with when it was sent and answered."""

    def __init__(self, reader: CountReader, nodes: Sequence[ServeNode], per_node: int) -> None:
        self.reader = reader
        self.replies: list[list[tuple[float, float, list[int], str]]] = []
        """per caller: (sent, answered, candidates, node) of every acknowledged ask."""
        self.errors = 0
        self.why: dict[str, int] = {}
        """errors by kind (the error's first words)"""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        for node in nodes:
            for _ in range(per_node):
                mine: list[tuple[float, float, list[int], str]] = []
                self.replies.append(mine)
                self._threads.append(threading.Thread(target=self._run, args=(node, mine)))

    def _run(self, node: ServeNode, mine: list[tuple[float, float, list[int], str]]) -> None:
        client: ControlClient | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = ControlClient(node.socket, timeout=10).connect()
                sent = time.monotonic()
                reply = client.request("ask", address=ADDRESS, message="1", timeout=2.0)
                answered = time.monotonic()
            except (AirssysError, OSError) as exc:
                if client is not None:  # a late answer must not be read as the next one's
                    client.close()
                    client = None
                kind = " ".join(str(exc).split()[:6])
                with self._lock:
                    self.errors += 1
                    self.why[kind] = self.why.get(kind, 0) + 1
                time.sleep(0.02)
                continue
            with self._lock:
                mine.append((sent, answered, self.reader.candidates(reply), node.name))
        if client is not None:
            client.close()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def acked(self) -> int:
        with self._lock:
            return sum(len(mine) for mine in self.replies)

    def absorb(self, other: Load) -> None:
        """Count ``other``'s replies and errors as this load's (both finished)."""
        self.replies += other.replies
        self.errors += other.errors
        for kind, times in other.why.items():
            self.why[kind] = self.why.get(kind, 0) + times

    def first_answer(self, after: float, node: str | None = None) -> float | None:
        """When the first ask sent after ``after`` (through ``node``) was answered."""
        with self._lock:
            times = [
                answered
                for mine in self.replies
                for sent, answered, _, name in mine
                if sent >= after and node in (None, name)
            ]
        return min(times, default=None)

    def counts(self) -> tuple[list[int], int, int]:
        """Every acknowledged count (an ambiguous one resolved to the candidate nearest
        the same caller's previous count), how many were ambiguous, how many unknown."""
        found: list[int] = []
        ambiguous = unknown = 0
        for mine in self.replies:
            previous = 0
            for _, _, candidates, _ in mine:
                if not candidates:
                    unknown += 1
                    continue
                if len(candidates) > 1:
                    ambiguous += 1
                previous = min(candidates, key=lambda c, p=previous: abs(c - p))  # type: ignore[misc]
                found.append(previous)
        return found, ambiguous, unknown


def final_count(reader: CountReader, node: ServeNode, acked: int) -> int:
    """One more ask: its count, less itself (what the state held)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            reply = node.request("ask", address=ADDRESS, message="1", timeout=5.0)
            candidates = reader.candidates(reply)
            return min(candidates, key=lambda c: abs(c - acked)) - 1
        except AirssysError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def tally(load: Load, reader: CountReader, node: ServeNode) -> dict[str, Any]:
    counts, ambiguous, unknown = load.counts()
    final = final_count(reader, node, len(counts))
    missing = max(len(counts) - final, sum(1 for c in counts if c > final))
    return {
        "acked": len(counts),
        "final": final,
        "lost": max(0, missing),
        "double": len(counts) - len(set(counts)),
        "ambiguous": ambiguous,
        "unknown": unknown,
        "errors": load.errors,
        "errors_by_kind": dict(sorted(load.why.items(), key=lambda kv: -kv[1])[:6]),
    }


def _start_pair(
    where: Path, urls: dict[str, str], lease: float = LEASE
) -> tuple[dict[str, ServeNode], str]:
    """Nodes p and q, each joined through ``urls[name]``; the one that placed the
    counter (the owner)."""
    nodes: dict[str, ServeNode] = {}
    try:
        for name in ("q", "p"):
            nodes[name] = ServeNode(where, name, urls[name], lease=lease)
        for node in nodes.values():
            node.wait_ready()
        poll(lambda: len(nodes["p"].serving()) == 1, 60, f"{ADDRESS} placed")
    except BaseException:
        for node in nodes.values():
            node.stop()
        raise
    return nodes, nodes["p"].serving()[0]


# --- SIGKILL of the owner under load ---------------------------------------------------


def durable_failover(
    cluster: NatsCluster, where: Path, reader: CountReader, quick: bool
) -> dict[str, Any]:
    url = ",".join(cluster.urls)
    nodes, owner = _start_pair(where / "failover", {"p": url, "q": url})
    other = nodes["p" if owner == "q" else "q"]
    before, after, callers = (2.0, 3.0, 8) if quick else (6.0, 8.0, 8)
    try:
        with Load(reader, [other], callers) as load:
            time.sleep(before)
            acked_before = load.acked()
            nodes[owner].proc.send_signal(signal.SIGKILL)
            killed, killed_wall = time.monotonic(), time.time()
            nodes[owner].proc.wait()
            poll(lambda: load.first_answer(killed) is not None, 60, "an answer after the kill")
            poll(lambda: other.serving() == [other.name], 60, f"{ADDRESS} on {other.name}")
            first = load.first_answer(killed)
            assert first is not None
            time.sleep(after)
        counted = tally(load, reader, other)
    finally:
        for node in nodes.values():
            node.stop()
    seen = {
        "left_view_ms": logged_ms(
            other, "cluster: node left the view", killed_wall, {"node": owner}
        ),
        "placed_ms": logged_ms(other, "cluster: placed supervisor started here", killed_wall),
    }
    return {
        "settings": f"2 nodes (own data dirs), {callers} callers through {other.name}'s "
        f"control socket, SIGKILL of the owner {owner} after {before:g} s, {after:g} s "
        f"more; lease {LEASE:g} s, renew {RENEW:g} s, replicas 3",
        "failover_ms": round((first - killed) * 1000, 1),
        "failover_lost": counted["lost"],
        "acked_before_kill": acked_before,
        "successor_log": seen,
        **counted,
    }


# --- a node cut off from NATS ----------------------------------------------------------


def stream_owners(url: str) -> list[tuple[int, int, bool]]:
    """(stream sequence, owner, takeover?) of every message of the counter's journal."""
    import nats
    from nats.js.api import DeliverPolicy
    from nats.js.errors import NotFoundError

    async def read() -> list[tuple[int, int, bool]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=10)
            try:
                last = int((await js.get_last_msg(JOURNAL_STREAM, SUBJECT)).seq or 0)
            except NotFoundError:
                return []
            sub = await js.subscribe(
                SUBJECT, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            found = []
            while True:
                msg = await sub.next_msg(timeout=10)
                seq = msg.metadata.sequence.stream
                headers: dict[str, str] = msg.headers or {}
                found.append((seq, int(headers.get(OWNER, "0")), TAKEOVER in headers))
                if seq >= last:
                    break
            await sub.unsubscribe()
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def purge(url: str) -> None:
    """The counter's journal subject emptied (what an earlier scenario left): the
    next owner starts from zero, and the subject holds this scenario's records only."""
    import nats
    from nats.js.errors import NotFoundError

    async def run() -> None:
        nc = await nats.connect(url)
        try:
            with contextlib.suppress(NotFoundError):
                await nc.jetstream(timeout=10).purge_stream(JOURNAL_STREAM, subject=SUBJECT)
        finally:
            await nc.close()

    asyncio.run(run())


def second_writers(messages: list[tuple[int, int, bool]]) -> tuple[int, int]:
    """Messages appended after a takeover by an owner older than it; and takeovers."""
    newest = late = takeovers = 0
    for _seq, owner, takeover in messages:
        if takeover:
            takeovers += 1
            newest = max(newest, owner)
        elif owner < newest:
            late += 1
    return late, takeovers


def partition(
    cluster: NatsCluster, where: Path, reader: CountReader, quick: bool
) -> dict[str, Any]:
    """The owner's only NATS server stopped between two loads (callers on the other
    node; none in flight at the cut, so the owner's counter stays up, idle: an ask in
    flight there would break its journal at once) until the other node answers in
    its place (it saw the owner's heartbeats stop); started again at once, and
    callers on the cut node from then on, while it still runs the counter: its lease
    (``PARTITION_LEASE``) is given up only ``lease - renew`` seconds after its last
    renewal, so its journal's next appends must be refused by the stream
    (``cut_node_fenced``: the refusals its log names). Then the journal's subject is
    read back."""
    purge(cluster.url(0))
    servers = {"p": 0, "q": 1}
    launched = time.monotonic()
    nodes, owner = _start_pair(
        where / "partition",
        {name: cluster.url(n) for name, n in servers.items()},
        lease=PARTITION_LEASE,
    )
    start_s = time.monotonic() - launched
    cut_node = nodes[owner]
    successor = nodes["p" if owner == "q" else "q"]
    before, after = (1.5, 3.0) if quick else (4.0, 6.0)
    try:
        with Load(reader, [successor], 4) as load:
            time.sleep(before)
        # no ask in flight to the owner when it is cut: its counter stays up, idle
        cluster.stop(servers[owner])
        cut, cut_wall = time.monotonic(), time.time()
        with Load(reader, [successor], 4) as during:
            poll(lambda: during.first_answer(cut) is not None, 60, "the successor's answer")
            taken = during.first_answer(cut)
            assert taken is not None
            cluster.start(servers[owner])  # healed
            healed = time.monotonic()
            time.sleep(HEALED_ASK)
            with Load(reader, [cut_node], 4) as late:
                time.sleep(after)
            rejoined = cut_node.request("cluster")["nodes"]
            still = successor.serving()
        load.absorb(during)
        load.absorb(late)
        cut_errors = dict(late.why)
        cut_acked = [answered - healed for mine in late.replies for _, answered, _, _ in mine]
        counted = tally(load, reader, successor)
    finally:
        if cluster.procs[servers[owner]] is None:  # the bench failed while it was cut
            cluster.start(servers[owner])
        for node in nodes.values():
            node.stop()
    log = cut_node.log_path.read_text(errors="replace")
    seen = {
        "successor_placed_ms": logged_ms(
            successor, "cluster: placed supervisor started here", cut_wall
        ),
        "cut_node_lost_lease_ms": logged_ms(
            cut_node, "cluster: lost a placed supervisor's lease", cut_wall
        ),
        "cut_node_stopped_ms": logged_ms(
            cut_node, "cluster: placed supervisor stopped here (runs elsewhere)", cut_wall
        ),
        "cut_node_fenced": fenced(cut_node),
        "cut_node_nats_tracebacks": log.count("nats: encountered error"),
    }
    reading = time.monotonic()
    messages = stream_owners(cluster.url(0))
    read_s = time.monotonic() - reading
    stale, takeovers = second_writers(messages)
    return {
        "settings": f"2 nodes, each joined through one server only, lease "
        f"{PARTITION_LEASE:g} s, renew {RENEW:g} s; 4 callers on {successor.name} for "
        f"{before:g} s; {owner}'s server stopped (no ask in flight), callers on "
        f"{successor.name} again, the server started again at {successor.name}'s first "
        f"answer, then 4 callers on {owner} too, {HEALED_ASK:g} s later, for {after:g} s",
        "second_writer": stale,
        "takeovers": takeovers,
        "takeover_owners": [by for _seq, by, takeover in messages if takeover],
        "messages": len(messages),
        "takeover_ms": round((taken - cut) * 1000, 1),
        "healed_ms": round((healed - cut) * 1000, 1),
        "cut_node_acked_after_heal": len(cut_acked),
        "cut_node_first_ack_ms": round(min(cut_acked, default=0.0) * 1000, 1),
        "cut_node_errors": cut_errors,
        "cut_node_sees": sorted(n["node"] for n in rejoined),
        "served_by_after_heal": still,
        "logs": seen,
        "start_s": round(start_s, 1),
        "read_s": round(read_s, 1),
        **counted,
    }


# --- the owner paused (SIGSTOP) while its successor takes over ---------------------------


def pause(cluster: NatsCluster, where: Path, reader: CountReader, quick: bool) -> dict[str, Any]:
    """The owner frozen with SIGSTOP under load (callers on the other node), as a long
    pause would (its NATS connections stay open); resumed with SIGCONT once the other
    node answers in its place, with callers on it too. It resumes believing it owns
    the counter, with the asks that reached it meanwhile waiting in its sockets: its
    next append must be refused by the stream. Then the journal's subject is read."""
    purge(cluster.url(0))
    url = ",".join(cluster.urls)
    nodes, owner = _start_pair(where / "pause", {"p": url, "q": url})
    paused_node = nodes[owner]
    successor = nodes["p" if owner == "q" else "q"]
    before, after = (1.5, 3.0) if quick else (4.0, 6.0)
    try:
        with Load(reader, [successor], 4) as load:
            time.sleep(before)
            paused_node.proc.send_signal(signal.SIGSTOP)
            paused, paused_wall = time.monotonic(), time.time()
            poll(lambda: load.first_answer(paused) is not None, 60, "the successor's answer")
            taken = load.first_answer(paused)
            assert taken is not None
            paused_node.proc.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            with Load(reader, [paused_node], 4) as late:
                time.sleep(after)
            still = successor.serving()
        load.absorb(late)
        counted = tally(load, reader, successor)
    finally:
        if paused_node.proc.poll() is None:
            paused_node.proc.send_signal(signal.SIGCONT)
        for node in nodes.values():
            node.stop()
    messages = stream_owners(cluster.url(0))
    stale, takeovers = second_writers(messages)
    return {
        "settings": f"2 nodes, lease {LEASE:g} s, renew {RENEW:g} s; 4 callers on "
        f"{successor.name}; {owner} paused with SIGSTOP after {before:g} s, resumed "
        f"at {successor.name}'s first answer, then 4 callers on {owner} too for {after:g} s",
        "second_writer": stale,
        "takeovers": takeovers,
        "takeover_owners": [by for _seq, by, takeover in messages if takeover],
        "messages": len(messages),
        "takeover_ms": round((taken - paused) * 1000, 1),
        "paused_ms": round((resumed - paused) * 1000, 1),
        "paused_node_fenced": fenced(paused_node),
        "paused_node_lost_lease_ms": logged_ms(
            paused_node, "cluster: lost a placed supervisor's lease", paused_wall
        ),
        "served_by_after": still,
        **counted,
    }


# --- all of them, on one NATS cluster --------------------------------------------------


def _guarded(scenario: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A failure of the bench itself is reported in the figures (``error``), not
    raised: the other scenarios still run."""
    try:
        return scenario()
    except Exception as exc:  # the figures say what broke
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def faults(quick: bool) -> dict[str, Any]:
    """``{"journal": ..., "durable": ..., "pause": ..., "partition": ...}`` on three nats-servers
    started here (stopped, and their stores removed, at the end)."""
    where = Path(tempfile.mkdtemp(prefix="airssys-bench-jetstream-"))
    cluster = NatsCluster(where)
    try:
        cluster.start()
        cluster.wait_for_jetstream()
        journal = _guarded(lambda: asyncio.run(journal_throughput(cluster, where, quick)))
        reader = CountReader()
        durable = _guarded(lambda: durable_failover(cluster, where, reader, quick))
        paused = _guarded(lambda: pause(cluster, where, reader, quick))
        cut = _guarded(lambda: partition(cluster, where, reader, quick))  # last: it stops a server
    finally:
        cluster.stop()
        shutil.rmtree(where, ignore_errors=True)
    return {"journal": journal, "durable": durable, "pause": paused, "partition": cut}


if __name__ == "__main__":  # these figures alone: python -m benches._jetstream_faults
    from benches._common import quiet_logs

    quiet_logs()
    json.dump(faults("--quick" in sys.argv), sys.stdout, indent=2)
    sys.stdout.write("\n")
