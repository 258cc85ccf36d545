"""The control protocol's validation and the server's behaviour, in-process: a
fake handler behind a real Unix socket; and the log ring and tee."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from airssys.errors import HandlerError
from airssys.node import LogRing, LogTee, ProtocolError, Request, parse_request
from airssys.node._control import MAX_CLIENTS, ControlServer
from airssys.node._protocol import MAX_LINE, encode, error_reply, jsonable

# --- parse_request ---------------------------------------------------------------------


def test_a_valid_request_gets_its_defaults() -> None:
    request = parse_request(b'{"op": "ask", "address": "/app/echo", "message": "1"}\n')
    assert request == Request(
        "ask", {"address": "/app/echo", "message": "1", "codec": "json", "timeout": 5.0}
    )
    assert not request.streaming
    logs = parse_request('{"op": "logs", "follow": true, "component": "/app"}')
    assert logs.streaming and logs.args == {"component": "/app", "limit": None, "follow": True}
    assert (
        parse_request('{"op": "send", "address": "/a", "message": "", "codec": "msgpack"}').args[
            "codec"
        ]
        == "messagepack"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "not valid JSON"),
        ("[1, 2]", "a request is a JSON object"),
        ('{"address": "/a"}', "unknown op None"),
        ('{"op": 1}', "unknown op 1"),
        ('{"op": "status", "x": 1}', "op 'status' takes no field 'x'; accepted: none"),
        ('{"op": "info"}', "op 'info' needs the field 'address'"),
        ('{"op": "info", "address": "app"}', "does not start with '/'"),
        ('{"op": "info", "address": "/a//b"}', "empty"),
        ('{"op": "info", "address": "/a/\\u0000"}', "control character"),
        ('{"op": "info", "address": "/a/\\ud800"}', "lone surrogate"),
        ('{"op": "info", "address": 5}', "must be a string"),
        ('{"op": "ask", "address": "/a", "message": 5}', "message must be a string"),
        ('{"op": "ask", "address": "/a", "message": "", "timeout": 0}', "more than 0"),
        ('{"op": "ask", "address": "/a", "message": "", "timeout": 1e9}', "at most 300"),
        ('{"op": "ask", "address": "/a", "message": "", "timeout": true}', "number of seconds"),
        ('{"op": "ask", "address": "/a", "message": "", "codec": "yaml"}', "codec must be one of"),
        ('{"op": "logs", "limit": 0}', "limit must be a whole number"),
        ('{"op": "logs", "follow": "yes"}', "follow must be true or false"),
        ('{"op": "audit", "decision": "maybe"}', "'grant' or 'deny'"),
        ('{"op": "audit", "since": "yesterday"}', "seconds since the epoch"),
        ("[" * 100_000, "not valid JSON"),
    ],
)
def test_a_bad_request_is_a_protocol_error(line: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_request(line)


def test_a_request_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(ProtocolError, match="longer than"):
        parse_request(b" " * (MAX_LINE + 1))


def test_replies_are_single_lines() -> None:
    line = encode(error_reply(HandlerError("two\nlines\r\n  and more")))
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line) == {"ok": False, "error": "two lines and more", "type": "HandlerError"}
    assert jsonable({"b": b"\x00\xff", 1: (1.5, float("nan"))}) == {
        "b": {"$bytes": "AP8="},
        "1": [1.5, "nan"],
    }


# --- the server ---------------------------------------------------------------------------


class FakeHandler:
    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.gate = asyncio.Event()
        self.followers = 0

    async def call(self, request: Request) -> Any:
        if request.op == "info" and request.args["address"] == "/slow":
            await self.gate.wait()
        if request.op == "info" and request.args["address"] == "/boom":
            raise RuntimeError("a bug")
        if request.op == "info" and request.args["address"] == "/refused":
            raise KeyError("no such child")
        return {"op": request.op, **request.args}

    async def follow(self, request: Request) -> AsyncGenerator[dict[str, Any], None]:
        self.followers += 1
        try:
            while True:
                yield await self.events.get()
        finally:
            self.followers -= 1


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[ControlServer, FakeHandler]]:
    handler = FakeHandler()
    control = ControlServer(handler, tmp_path / "control.sock")
    await control.start()
    try:
        yield control, handler
    finally:
        await control.close(grace=1.0)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path) -> Conn:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=4 * MAX_LINE)
        return cls(reader, writer)

    async def send(self, line: bytes) -> None:
        self.writer.write(line)
        await self.writer.drain()

    async def reply(self) -> Any:
        line = await asyncio.wait_for(self.reader.readline(), 10)
        return json.loads(line) if line else None

    async def ask(self, request: dict[str, Any]) -> Any:
        await self.send(json.dumps(request).encode() + b"\n")
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_the_socket_is_private_and_answers(
    server: tuple[ControlServer, FakeHandler],
) -> None:
    control, _ = server
    assert control.path.stat().st_mode & 0o777 == 0o600
    conn = await Conn.open(control.path)
    assert await conn.ask({"op": "ping"}) == {"ok": True, "result": {"op": "ping"}}
    await conn.close()


async def test_errors_are_answered_and_the_connection_goes_on(
    server: tuple[ControlServer, FakeHandler],
) -> None:
    control, _ = server
    conn = await Conn.open(control.path)
    await conn.send(b"\n\n")  # blank lines are skipped
    assert (await conn.ask({"op": "nope"}))["type"] == "ProtocolError"
    assert await conn.ask({"op": "info", "address": "/boom"}) == {
        "ok": False,
        "error": "internal error: RuntimeError('a bug')",
        "type": "InternalError",
    }
    refused = await conn.ask({"op": "info", "address": "/refused"})
    assert refused["type"] == "KeyError" and refused["ok"] is False
    assert (await conn.ask({"op": "list"}))["ok"] is True
    await conn.send(b'{"op": "status"}')  # the last request may lack its newline
    conn.writer.write_eof()
    assert await conn.reply() == {"ok": True, "result": {"op": "status"}}
    await conn.close()


async def test_an_overlong_line_closes_only_that_connection(
    server: tuple[ControlServer, FakeHandler],
) -> None:
    control, _ = server
    other = await Conn.open(control.path)
    conn = await Conn.open(control.path)
    await conn.send(b"{" + b" " * MAX_LINE + b"}\n")
    reply = await conn.reply()
    assert reply["ok"] is False and f"longer than {MAX_LINE} bytes" in reply["error"]
    assert await conn.reply() is None
    assert (await other.ask({"op": "ping"}))["ok"] is True
    await conn.close()
    await other.close()


async def test_a_slow_request_does_not_hold_up_other_clients(
    server: tuple[ControlServer, FakeHandler],
) -> None:
    control, handler = server
    slow = await Conn.open(control.path)
    await slow.send(b'{"op": "info", "address": "/slow"}\n')
    fast = await Conn.open(control.path)
    assert (await fast.ask({"op": "ping"}))["ok"] is True
    handler.gate.set()
    assert (await slow.reply())["result"]["address"] == "/slow"
    await slow.close()
    await fast.close()


async def test_connections_are_bounded(server: tuple[ControlServer, FakeHandler]) -> None:
    control, _ = server
    conns = [await Conn.open(control.path) for _ in range(MAX_CLIENTS)]
    for conn in conns[:1]:
        assert (await conn.ask({"op": "ping"}))["ok"] is True
    while control.clients < MAX_CLIENTS:
        await asyncio.sleep(0.01)
    extra = await Conn.open(control.path)
    assert await extra.reply() == {
        "ok": False,
        "error": "too many control connections",
        "type": "Busy",
    }
    await extra.close()
    for conn in conns:
        await conn.close()


async def test_a_stream_sends_events_until_the_client_closes(
    server: tuple[ControlServer, FakeHandler],
) -> None:
    control, handler = server
    conn = await Conn.open(control.path)
    assert await conn.ask({"op": "logs", "follow": True}) == {"ok": True, "stream": True}
    await handler.events.put({"event": "one"})
    assert await conn.reply() == {"event": {"event": "one"}}
    await conn.close()
    while handler.followers:  # the stream noticed the hangup and ended its generator
        await asyncio.sleep(0.01)
    assert control.clients == 0


async def test_closing_ends_streams_and_refuses_new_clients(tmp_path: Path) -> None:
    handler = FakeHandler()
    control = ControlServer(handler, tmp_path / "control.sock")
    await control.start()
    conn = await Conn.open(control.path)
    assert (await conn.ask({"op": "logs", "follow": True}))["stream"] is True
    idle = await Conn.open(control.path)
    assert (await idle.ask({"op": "ping"}))["ok"] is True
    await control.close(grace=1.0, why="the node is stopping")
    assert await conn.reply() == {"end": "the node is stopping"}
    assert await conn.reply() is None
    assert await idle.reply() is None
    assert not control.path.exists()
    assert handler.followers == 0
    await conn.close()
    await idle.close()


# --- logs -------------------------------------------------------------------------------


def test_the_tee_keeps_events_and_shows_text_from_its_level() -> None:
    ring = LogRing(capacity=3)
    out = io.StringIO()
    tee = LogTee(ring, out=out, level=30)  # warning and up on the stream
    tee.write('{"event": "hello", "level": "info", "address": "/app/echo"}\n')
    tee.write('{"event": "careful", "level": "warn')
    tee.write('ing", "supervisor": "/app"}\nnot json\n')
    assert [e["event"] for e in ring.recent()] == ["hello", "careful", "not json"]
    assert [e["event"] for e in ring.recent(address="/app")] == ["hello", "careful"]
    assert [e["event"] for e in ring.recent(address="/app/echo")] == ["hello"]
    assert [e["seq"] for e in ring.recent()] == [1, 2, 3]
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "careful" in lines[0] and "supervisor=/app" in lines[0]
    tee.write('{"event": "four", "level": "error"}\n')
    assert [e["event"] for e in ring.recent()] == ["careful", "not json", "four"]  # bounded
    assert [e["event"] for e in ring.recent(limit=1)] == ["four"]


def test_the_tee_writes_json_lines_when_asked() -> None:
    out = io.StringIO()
    tee = LogTee(LogRing(), out=out, json_lines=True)
    line = '{"event": "x", "level": "error"}'
    tee.write(line + "\n")
    tee.say("ready", node="n")
    first, second = out.getvalue().splitlines()
    assert first == line
    assert json.loads(second)["event"] == "ready" and json.loads(second)["node"] == "n"


async def test_ring_subscribers_get_events_from_other_threads() -> None:
    ring = LogRing()
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    unsubscribe = ring.subscribe(got.put_nowait)
    await asyncio.to_thread(ring.append, {"event": "from a thread"})
    assert (await asyncio.wait_for(got.get(), 5))["event"] == "from a thread"
    unsubscribe()
    ring.append({"event": "after"})
    await asyncio.sleep(0)
    assert got.empty()
