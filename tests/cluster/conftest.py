"""A real ``nats-server`` on a free loopback port, and nodes joined to it.

Skipped (with the reason) only when nats-server is not installed; CI installs it
(``.ci/run``)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.conftest import free_port

NATS = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
)


class NatsServer:
    """``nats-server -a 127.0.0.1 -p PORT``; stop() and start() again on the same port."""

    def __init__(self, where: Path, extra: list[str] | None = None) -> None:
        assert NATS is not None
        self.binary: str = NATS
        self.port = free_port()
        self.where = where
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = where / "nats-server.log"
        self.extra = extra or []

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-a", "127.0.0.1", "-p", str(self.port), *self.extra],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if NATS is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _distinct_ports(n: int) -> list[int]:
    """``n`` free loopback ports, all different (each socket held until all are found)."""
    held = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


class JetStreamCluster:
    """``size`` nats-servers with JetStream on loopback, routed to each other (a
    cluster of one is a plain JetStream server), each with its own store."""

    def __init__(self, where: Path, size: int = 3) -> None:
        ports, clients = _distinct_ports(size), _distinct_ports(size)
        while set(ports) & set(clients):
            clients = _distinct_ports(size)
        self.servers: list[NatsServer] = []
        for n, port in enumerate(ports):
            folder = where / f"nats-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            extra = ["-js", "-sd", str(folder / "store"), "-n", f"s{n}"]
            if size > 1:
                routes = ",".join(f"nats://127.0.0.1:{p}" for p in ports if p != port)
                extra += [
                    "--cluster_name", "airssys-test",
                    "--cluster", f"nats://127.0.0.1:{port}",
                    "--routes", routes,
                    # clients use only the URLs they were given: stopping a node's
                    # server cuts that node off (nats-py would reconnect elsewhere)
                    "--no_advertise=true",
                ]  # fmt: skip
            server = NatsServer(folder, extra)
            server.port, server.url = clients[n], f"nats://127.0.0.1:{clients[n]}"
            self.servers.append(server)

    @property
    def url(self) -> str:
        return ",".join(server.url for server in self.servers)

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def wait_for_jetstream(self, timeout: float = 30.0) -> None:
        """Until a stream with ``len(servers)`` replicas can be made (a meta leader is
        elected): made and deleted again."""
        import asyncio

        import nats

        async def probe() -> None:
            deadline = time.monotonic() + timeout
            last: Exception | None = None
            while time.monotonic() < deadline:
                try:
                    nc = await nats.connect(self.url.split(","), connect_timeout=2)
                except Exception as exc:
                    last = exc
                    await asyncio.sleep(0.2)
                    continue
                try:
                    js = nc.jetstream(timeout=2)
                    await js.add_stream(
                        name="PROBE", subjects=["probe"], num_replicas=len(self.servers)
                    )
                    await js.delete_stream("PROBE")
                    return
                except Exception as exc:
                    last = exc
                    await asyncio.sleep(0.3)
                finally:
                    await nc.close()
            raise AssertionError(f"JetStream not ready in {timeout} s: {last!r}")

        asyncio.run(probe())


@pytest.fixture
def jetstream(tmp_path: Path) -> Iterator[JetStreamCluster]:
    """One nats-server with JetStream."""
    if NATS is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    cluster = JetStreamCluster(tmp_path, size=1)
    cluster.start()
    try:
        cluster.wait_for_jetstream()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def jetstream3(tmp_path: Path) -> Iterator[JetStreamCluster]:
    """Three nats-servers with JetStream, clustered (replicas 3 keep quorum with one down)."""
    if NATS is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    cluster = JetStreamCluster(tmp_path, size=3)
    cluster.start()
    try:
        cluster.wait_for_jetstream(60.0)
        yield cluster
    finally:
        cluster.stop()
