"""Placed durable components with their journals in JetStream, against three real
nats-servers and real `airssys serve` nodes, each with a data directory of its own (as
on separate machines): the owner killed with SIGKILL under load, a NATS server
stopped, a node cut off from NATS. Counted by the test's own clients."""

from __future__ import annotations

import asyncio
import base64
import signal
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airssys.errors import AirssysError
from tests.cluster.conftest import JetStreamCluster
from tests.cluster.test_nodes import DURABLE, component, where
from tests.node.conftest import NodeProcess, deployment_text
from tests.waiting import poll

pytestmark = pytest.mark.timeout(240)

WORK = component("work", "counter", "counter", DURABLE, sup_extra='node = ["q", "p"]')
ADDRESS = "/work/counter"


def count(reply: dict[str, Any]) -> int:
    """The counter's reply: its count, 4 bytes little-endian. A count whose first bytes
    read as a varint of 0x55 (``55``, or ``d5 00``, ``d5 80 00``) is shown as a raw
    multicodec message: that prefix goes back in front."""
    data = base64.b64decode(reply["value"]["$bytes"])
    if reply["codec"] == "raw":
        cut = 4 - len(data)
        data = (b"\x55" if cut == 1 else b"\xd5" + b"\x80" * (cut - 2) + b"\x00") + data
    (value,) = struct.unpack("<I", data)
    return int(value)


def start(
    where: Path, urls: dict[str, str], *, lease: float = 3.0, renew: float = 1.0
) -> dict[str, NodeProcess]:
    """One node per name, each joined through its own NATS URL(s), data dir of its own."""
    nodes: dict[str, NodeProcess] = {}
    try:
        for name, url in urls.items():
            here = where / name
            here.mkdir()
            text = deployment_text(here / "run", None, name=name, body=WORK)
            text += (
                f'\n[cluster]\nurl = "{url}"\nnode = "{name}"\njournal = "jetstream"\n'
                f"replicas = 3\nlease = {lease}\nrenew = {renew}\n"
            )
            (here / "deployment.toml").write_text(text)
            nodes[name] = NodeProcess(here / "deployment.toml", here / "run", None)
        for node in nodes.values():
            node.wait_ready()
    except BaseException:
        for node in nodes.values():
            node.stop()
        raise
    return nodes


class Load:
    """Callers asking the durable counter through one node, each keeping every count it
    was answered (an acknowledged increment) and counting its errors."""

    def __init__(self, node: NodeProcess, callers: int = 4) -> None:
        self.node = node
        self.counts: list[int] = []
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(callers)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self.node.request("ask", address=ADDRESS, message="1", timeout=5)
            except (AirssysError, OSError):
                with self._lock:
                    self.errors += 1
                time.sleep(0.05)
                continue
            with self._lock:
                self.counts.append(count(reply))

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
            return len(self.counts)


def final_count(node: NodeProcess) -> int:
    def asked() -> int | None:
        try:
            return count(node.request("ask", address=ADDRESS, message="1", timeout=5))
        except AirssysError:
            return None

    return int(poll(asked, timeout=60))


def check(counts: list[int], final: int) -> None:
    """Every acknowledged increment is in the state once: no count handed out twice
    (the state never fell back) and none above what the state holds."""
    assert len(set(counts)) == len(counts), "a count was handed out twice"
    assert max(counts) <= final - 1
    assert final - 1 >= len(counts), f"{len(counts)} acknowledged, the state holds {final - 1}"


def test_sigkill_of_the_owner_under_load_loses_nothing_acknowledged(
    jetstream3: JetStreamCluster, tmp_path: Path
) -> None:
    url = jetstream3.url
    nodes = start(tmp_path, {"p": url, "q": url})
    p, q = nodes["p"], nodes["q"]
    try:
        poll(lambda: where(p, ADDRESS) == ["q"], timeout=60)
        with Load(p) as load:
            poll(lambda: load.acked() >= 300, timeout=60)
            q.proc.send_signal(signal.SIGKILL)
            assert q.stop() == -signal.SIGKILL
            killed_at = load.acked()
            poll(lambda: where(p, ADDRESS) == ["p"], timeout=60)
            poll(lambda: load.acked() >= killed_at + 300, timeout=60)
        final = final_count(p)
        check(load.counts, final)
        assert final - 1 > killed_at  # it went on from the stream, past the kill
    except BaseException:
        print("p's log:", p.stderr[-6000:])
        raise
    finally:
        for node in nodes.values():
            node.stop()


def test_a_nats_server_stopped_under_load_loses_nothing(
    jetstream3: JetStreamCluster, tmp_path: Path
) -> None:
    servers = jetstream3.servers
    nodes = start(tmp_path, {"p": servers[0].url, "q": servers[1].url})
    p = nodes["p"]
    try:
        poll(lambda: where(p, ADDRESS) == ["q"], timeout=60)
        with Load(p) as load:
            poll(lambda: load.acked() >= 200, timeout=60)
            servers[2].stop()  # no node's server: the stream keeps its quorum of 2
            stopped_at = load.acked()
            poll(lambda: load.acked() >= stopped_at + 200, timeout=60)
        final = final_count(p)
        check(load.counts, final)
    finally:
        for node in nodes.values():
            node.stop()


def stream_owners(url: str, subject: str) -> list[tuple[int, int, bool]]:
    """(stream sequence, owner, takeover?) of every message on ``subject``."""
    import nats
    from nats.js.api import DeliverPolicy

    async def read() -> list[tuple[int, int, bool]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            last = await js.get_last_msg("AIRSSYS_JOURNAL", subject)
            sub = await js.subscribe(
                subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            found = []
            while True:
                msg = await sub.next_msg(timeout=5)
                headers: dict[str, Any] = msg.headers or {}
                seq = msg.metadata.sequence.stream
                found.append(
                    (seq, int(headers.get("airssys-owner", 0)), "airssys-takeover" in headers)
                )
                if seq >= (last.seq or 0):
                    break
            await sub.unsubscribe()
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def test_a_node_cut_off_from_nats_stops_and_never_appends_after_its_successor(
    jetstream3: JetStreamCluster, tmp_path: Path
) -> None:
    servers = jetstream3.servers
    nodes = start(tmp_path, {"p": servers[0].url, "q": servers[1].url})
    p, q = nodes["p"], nodes["q"]
    try:
        poll(lambda: where(p, ADDRESS) == ["q"], timeout=60)
        for _ in range(20):
            p.request("ask", address=ADDRESS, message="1", timeout=5)
        servers[1].stop()  # q is cut off from NATS, not from its local clients

        def refused_on_q() -> bool:
            try:
                q.request("ask", address=ADDRESS, message="1", timeout=2)
            except AirssysError:
                return True
            return False

        poll(refused_on_q, timeout=30)  # (how soon is benches/bench_cluster.py's to say)
        poll(lambda: where(p, ADDRESS) == ["p"], timeout=60)
        assert final_count(p) == 21  # the 20 acknowledged, then this one: q's refused none

        servers[1].start()  # healed: q rejoins as a follower, p keeps the supervisor
        poll(lambda: any(n["node"] == "q" for n in p.request("cluster")["nodes"]), timeout=60)
        time.sleep(2.0)  # a few placement rounds
        assert where(p, ADDRESS) == ["p"]
        assert count(p.request("ask", address=ADDRESS, message="1", timeout=5)) == 22

        owners = stream_owners(servers[0].url, "airssys.journal.work.counter")
        takeovers = [(seq, owner) for seq, owner, takeover in owners if takeover]
        assert len(takeovers) == 2, owners  # q's, then p's
        (_, q_owner), (p_seq, p_owner) = takeovers
        assert p_owner > q_owner
        late = [(seq, owner) for seq, owner, _ in owners if seq > p_seq and owner != p_owner]
        assert late == [], "a fenced owner appended after its successor took over"
    except BaseException:
        print("q's log:", q.stderr[-6000:], "p's log:", p.stderr[-4000:])
        raise
    finally:
        servers[1].start() if servers[1].proc is None else None
        for node in nodes.values():
            node.stop()


def test_a_short_nats_outage_under_load_does_not_stop_the_durable_component_for_good(
    jetstream3: JetStreamCluster, tmp_path: Path
) -> None:
    """The only node that may run it loses its server for a second mid-load: its
    journal breaks, the component's restarts fail while NATS is away and its
    supervisor gives up; the node places it again from the stream once NATS is back."""
    servers = jetstream3.servers
    only = component("work", "counter", "counter", DURABLE, sup_extra='node = ["q"]')
    here = tmp_path / "q"
    here.mkdir()
    text = deployment_text(here / "run", None, name="q", body=only)
    text += (
        f'\n[cluster]\nurl = "{servers[1].url}"\nnode = "q"\njournal = "jetstream"\nreplicas = 3\n'
    )
    (here / "deployment.toml").write_text(text)
    q = NodeProcess(here / "deployment.toml", here / "run", None)
    try:
        q.wait_ready()
        poll(lambda: where(q, ADDRESS) == ["q"], timeout=60)
        with Load(q) as load:
            poll(lambda: load.acked() >= 200, timeout=60)
            servers[1].stop()
            time.sleep(1.0)  # less than a lease: the node keeps it
            servers[1].start()
            cut_at = load.acked()
            poll(lambda: load.acked() >= cut_at + 200, timeout=90)
        check(load.counts, final_count(q))
    except BaseException:
        print("q's log:", q.stderr[-6000:])
        raise
    finally:
        q.stop()
