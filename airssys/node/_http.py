"""The node's HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

A small HTTP/1.1 server on asyncio (``asyncio.start_server``): GET and HEAD only,
one request per connection (``Connection: close``), a request head of at most
16 KiB read within 5 seconds, nothing logged per request. Everything is answered
on the event loop's thread, so ``/metrics`` reads the system's counters where
they are written. It listens on the deployment's ``node.metrics`` address
(loopback unless the deployment says otherwise) and is closed with the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final, Protocol

from .._logging import get_logger, truncate
from ._deployment import MetricsAddress

__all__ = ("HttpBackend", "HttpServer")

_log = get_logger("airssys.node.http")
_HEAD_MAX: Final = 16 * 1024
_READ_TIMEOUT: Final = 5.0
_MAX_CONNECTIONS: Final = 64
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_JSON: Final = "application/json"
_TEXT: Final = "text/plain; charset=utf-8"


class HttpBackend(Protocol):
    """What the endpoints report (the node)."""

    def metrics_text(self) -> tuple[bytes, str]:
        """The Prometheus exposition and its content type."""
        ...

    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


def _json(ok: bool, body: dict[str, Any]) -> tuple[int, bytes, str]:
    return (200 if ok else 503), json.dumps(body).encode() + b"\n", _JSON


class HttpServer:
    """Serves the endpoints of ``backend`` at ``address``; ``port`` is the bound one."""

    def __init__(self, backend: HttpBackend, address: MetricsAddress) -> None:
        self.backend = backend
        self.address = address
        self.port = address.port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        host = f"[{self.address.host}]" if ":" in self.address.host else self.address.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.address.host, self.address.port, limit=_HEAD_MAX
        )
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if len(self._tasks) > _MAX_CONNECTIONS:
                await self._respond(writer, "GET", 503, b"busy\n", _TEXT)
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            except asyncio.LimitOverrunError:
                await self._respond(writer, "GET", 400, b"request head too large\n", _TEXT)
                return
            method, status, body, kind = self._route(head)
            await self._respond(writer, method, status, body, kind)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # closing
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()

    def _route(self, head: bytes) -> tuple[str, int, bytes, str]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "GET", 400, b"bad request\n", _TEXT
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return "GET", 405, b"only GET and HEAD\n", _TEXT
        path = target.split("?", 1)[0]
        try:
            if path == "/metrics":
                body, kind = self.backend.metrics_text()
                return method, 200, body, kind
            if path == "/healthz":
                return (method, *_json(*self.backend.health()))
            if path == "/readyz":
                return (method, *_json(*self.backend.readiness()))
        except Exception as exc:
            _log.exception("HTTP endpoint failed", path=truncate(path, 100))
            return method, 500, f"internal error: {type(exc).__name__}\n".encode(), _TEXT
        return method, 404, b"not found: try /metrics, /healthz or /readyz\n", _TEXT

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter, method: str, status: int, body: bytes, kind: str
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(head if method == "HEAD" else head + body)
        await writer.drain()
