"""The control socket's server: one task per client, one request at a time per client.

A client's bad request is answered with an error and the connection goes on
(a line longer than :data:`~._protocol.MAX_LINE` closes it: there is no telling
where the next request starts); a client that stops reading only fills its own
buffers; at most :data:`MAX_CLIENTS` connections are served at once. The socket
file is created mode 0600 in the node's private (0700) run dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Final, Protocol

from .._logging import get_logger, truncate
from .._progress import ProgressEvent, listen
from ..errors import AirssysError
from ._protocol import (
    MAX_LINE,
    ProtocolError,
    Request,
    encode,
    error_reply,
    ok_reply,
    parse_request,
)

__all__ = ("MAX_CLIENTS", "ControlServer", "Handler")

_log = get_logger("airssys.node.control")
MAX_CLIENTS: Final = 64
_EXPECTED: Final = (AirssysError, ValueError, TypeError, KeyError, LookupError, TimeoutError)


class Handler(Protocol):
    """What answers the requests (the node)."""

    async def call(self, request: Request) -> Any: ...

    def follow(self, request: Request) -> AsyncGenerator[dict[str, Any], None]: ...


class _Client:
    __slots__ = ("busy", "task", "writer")

    def __init__(self, writer: asyncio.StreamWriter, task: asyncio.Task[Any]) -> None:
        self.writer = writer
        self.task = task
        self.busy = False


class ControlServer:
    """Serves :class:`Handler` on a Unix socket at ``path``."""

    def __init__(self, handler: Handler, path: Path) -> None:
        self.handler = handler
        self.path = path
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.StreamWriter, _Client] = {}
        self._closing = False
        self._end_why = "the node is stopping"

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_LINE
        )
        os.chmod(self.path, 0o600)

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def close(self, *, grace: float = 5.0, why: str = "the node is stopping") -> None:
        """Stop accepting; end streams (``{"end": why}``); let requests in progress
        finish for up to ``grace`` seconds; close every connection and the socket."""
        self._closing = True
        self._end_why = why
        server, self._server = self._server, None
        if server is not None:
            server.close()
        clients = list(self._clients.values())
        for client in clients:
            if not client.busy:
                client.task.cancel()
        busy = [c.task for c in clients if c.busy]
        if busy:
            _done, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
        tasks = [c.task for c in clients]
        if tasks:
            await asyncio.wait(tasks)
        if server is not None:
            await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing or len(self._clients) >= MAX_CLIENTS:
            why = "the node is stopping" if self._closing else "too many control connections"
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(encode(error_reply(why, "Busy")))
                await writer.drain()
            await self._close_writer(writer)
            return
        client = _Client(writer, task)
        self._clients[writer] = client
        try:
            await self._requests(client, reader, writer)
        except (ConnectionError, OSError):
            pass  # the client went away
        except asyncio.CancelledError:
            if not self._closing:
                raise
        except Exception:  # a bug of ours: this connection ends, the others go on
            _log.exception("control connection failed")
        finally:
            self._clients.pop(writer, None)
            await self._close_writer(writer)

    async def _requests(
        self, client: _Client, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while not self._closing:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return  # the client closed the connection
                line = exc.partial  # a last request without its newline
            except asyncio.LimitOverrunError:
                writer.write(encode(error_reply(f"the request is longer than {MAX_LINE} bytes")))
                await writer.drain()
                return
            if not line.strip():
                continue
            client.busy = True
            try:
                try:
                    request = parse_request(line)
                except ProtocolError as exc:
                    writer.write(encode(error_reply(exc)))
                    await writer.drain()
                    continue
                if request.streaming:
                    client.busy = False  # a stream ends at once when the node stops
                    await self._stream(request, reader, writer)
                    return
                if request.args.get("progress"):
                    reply = await self._answer_with_progress(request, writer)
                else:
                    reply = await self._answer(request)
                writer.write(encode(reply))
                await writer.drain()
            finally:
                client.busy = False

    async def _answer(self, request: Request) -> dict[str, Any]:
        try:
            return ok_reply(await self.handler.call(request))
        except asyncio.CancelledError:
            raise
        except _EXPECTED as exc:
            return error_reply(exc)
        except Exception as exc:  # a bug of ours: say so, keep serving
            _log.exception("control request failed", op=request.op)
            return error_reply(f"internal error: {truncate(repr(exc), 300)}", "InternalError")

    async def _answer_with_progress(
        self, request: Request, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        """The answer, with a ``{"progress": ...}`` line for each progress event (from
        any thread of the node) while it is being worked out."""
        loop = asyncio.get_running_loop()
        open_ = [True]

        def write(event: ProgressEvent) -> None:
            if open_[0] and not writer.is_closing():
                writer.write(encode({"progress": event.as_dict()}))

        def forward(event: ProgressEvent) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(write, event)

        stop = listen(forward)
        try:
            return await self._answer(request)
        finally:
            stop()
            await asyncio.sleep(0)  # the events handed over before stop() go out first
            open_[0] = False

    async def _stream(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """``{"ok": true, "stream": true}``, then one line per event until the client
        closes (or sends anything: the stream is all it gets) or the node stops."""
        writer.write(encode({"ok": True, "stream": True}))
        await writer.drain()
        events = self.handler.follow(request)
        hangup = asyncio.ensure_future(reader.read(1))
        step: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({step, hangup}, return_when=asyncio.FIRST_COMPLETED)
                if step not in done:
                    return  # the client hung up (or spoke): the stream is over
                try:
                    event = step.result()
                except StopAsyncIteration:
                    writer.write(encode({"end": "the stream is over"}))
                    await writer.drain()
                    return
                writer.write(encode({"event": event}))
                await writer.drain()
        except asyncio.CancelledError:
            if self._closing:
                with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                    writer.write(encode({"end": self._end_why}))
                    await asyncio.wait_for(writer.drain(), 1.0)
            raise
        finally:
            for pending in (step, hangup):
                if pending is None:
                    continue
                if not pending.done():
                    pending.cancel()
                # awaited even when done: a reset connection's error is taken here, not
                # left for asyncio to print as "exception was never retrieved"
                with contextlib.suppress(
                    asyncio.CancelledError, StopAsyncIteration, ConnectionError, OSError
                ):
                    await pending
            await events.aclose()

    @staticmethod
    async def _close_writer(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            await writer.wait_closed()
