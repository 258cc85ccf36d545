"""Loopback HTTP servers the host-service tests talk to, started and stopped here.

Each :class:`Server` counts the connections it accepts; :meth:`Server.settled`
answers that count once every earlier connection has been taken in (it sends its
own probe request and waits for the answer: the accept loop takes connections in
order), so "never received a connection" is asserted without sleeping.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3

from airssys.security import CompiledGrants, Grants

Route = Callable[["Handler"], None]
PROBE = "/__probe__"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def handle_one(self) -> None:
        path = self.path.partition("?")[0]
        if path == PROBE:
            self.reply(204)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record(self.command, self.path, list(self.headers.items()), body)
        route = self.server.routes.get(path)
        if route is None:
            self.reply(404, b"no such route")
        else:
            route(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_one

    def reply(
        self, status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    """An HTTP/1.0 server on a loopback port, one thread per connection (all joined)."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections = 0
        self.requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.routes: dict[str, Route] = {}
        self.release = threading.Event()  # set at teardown: stalling routes return
        self._lock = threading.Lock()
        super().__init__((host, 0), Handler)
        self.host = host

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer (the timeout tests) is expected

    def record(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> None:
        with self._lock:
            self.requests.append((method, path, headers, body))

    def settled(self) -> int:
        """Connections accepted before this call (the probe's own is not counted)."""
        with urllib3.PoolManager(retries=False) as pool:
            assert pool.request("GET", self.origin + PROBE).status == 204
        with self._lock:
            return self.connections - 1

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    started: list[tuple[Server, threading.Thread]] = []

    def start(host: str = "127.0.0.1") -> Server:
        server = Server(host)
        thread = threading.Thread(
            target=server.serve_forever, args=(0.01,), name=f"server-{server.port}"
        )
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.stop()
        thread.join()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture
def other(start_server: Callable[..., Server]) -> Server:
    """A second server, on another port."""
    return start_server()


class Denials:
    """An on_deny hook that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, kind: str, resource: str, reason: str) -> None:
        self.seen.append((kind, resource, reason))


def checks(table: dict[str, Any], denials: Denials | None = None) -> CompiledGrants:
    return Grants.from_dict(table).compile("test", on_deny=denials)
