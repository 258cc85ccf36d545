"""join_cluster with two (or three) ActorSystems in one event loop and a real
nats-server: addressing, asks, tells, topics, typed errors, node loss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats import errors as nats_errors
from structlog.testing import capture_logs

from airssys import codec, open_system
from airssys.actors import Actor, ActorSystem
from airssys.cluster import (
    Cluster,
    ClusterError,
    address_subject,
    decode_token,
    encode_token,
    join_cluster,
    topic_subject,
)
from airssys.errors import ActorDeadError, AskTimeout, CodecError, HandlerError
from tests.cluster.conftest import NatsServer
from tests.conftest import fixture_path
from tests.node.conftest import free_port
from tests.waiting import stays, until

pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def joined(
    server: NatsServer, *names: str, **options: Any
) -> AsyncIterator[list[tuple[ActorSystem, Cluster]]]:
    async with AsyncExitStack() as stack:
        out = []
        for name in names:
            system = await stack.enter_async_context(open_system(name, storage="memory"))
            cluster = await stack.enter_async_context(
                join_cluster(system, server.url, node=name, **options)
            )
            out.append((system, cluster))
        yield out


class Recorder(Actor):
    def __init__(self, seen: list[tuple[Any, str | None]]) -> None:
        self.seen = seen

    def on_message(self, message: Any) -> Any:
        self.seen.append((message, self.sender))
        return message


class Slow(Actor):
    async def on_message(self, message: Any) -> Any:
        await asyncio.sleep(30)
        return message


def recorder(seen: list[tuple[Any, str | None]]) -> Callable[[], Actor]:
    return lambda: Recorder(seen)


# --- subjects ---------------------------------------------------------------------------


def test_subjects_are_safe_tokens() -> None:
    assert address_subject("/app/echo") == "airssys.addr.app.echo"
    assert address_subject("/app/my.echo") == "airssys.addr.app.my%2Eecho"
    assert topic_subject("orders.eu created") == "airssys.topic.orders.eu%20created"
    assert address_subject("/" + "é" * 900).startswith("airssys.addr.~h.")


@given(st.text(min_size=1, max_size=40))
def test_tokens_round_trip(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    token = encode_token(text)
    assert not any(c in token for c in ". *>\t\r\n")
    assert decode_token(token) == text


# --- joining ----------------------------------------------------------------------------


async def test_unreachable_server_is_a_clear_error_in_bounded_time() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    async with open_system("lonely", storage="memory") as system:
        with pytest.raises(ClusterError, match=f"cannot reach NATS at {url}"):
            async with join_cluster(system, url, connect_timeout=1.0):
                pass
        assert system.broker.remote is None


async def test_leaving_unsets_the_remote_and_leaves_nothing_running(
    nats_server: NatsServer,
) -> None:
    async with open_system("a", storage="memory") as system:
        before = set(asyncio.all_tasks())
        async with join_cluster(system, nats_server.url, node="a") as cluster:
            assert system.broker.remote is cluster
        assert system.broker.remote is None
        assert cluster.nc.is_closed
        await asyncio.sleep(0)
        assert {t for t in asyncio.all_tasks() if not t.done()} - before == set()


# --- messages ---------------------------------------------------------------------------


async def test_ask_crosses_nodes_and_keeps_the_codec(nats_server: NatsServer) -> None:
    async with joined(nats_server, "a", "b") as [(a, ca), (b, cb)]:
        await b.spawn_component(fixture_path("echo"), name="echo")
        await until(lambda: ca.hosts("/echo"))
        assert ca.where("/echo") == ["b"] and cb.where("/echo") == ["b"]
        message = codec.encode({"hi": [1, 2]}, "messagepack")
        assert await a.ask("/echo", message, timeout=5) == message
        assert codec.decode(await a.ask("/echo", codec.encode("x", "json"))) == "x"
        # the remote handler's error comes back as the same type
        with pytest.raises(HandlerError, match="err:boom"):
            await a.ask("/echo", codec.encode(1, "json"), sender="err:boom")
        # ok(none) is None here too
        assert await a.ask("/echo", codec.encode(1, "json"), sender="none") is None
        # only bytes cross nodes
        with pytest.raises(CodecError, match="only bytes cross nodes"):
            await a.ask("/echo", {"not": "bytes"})
        assert cb.served_count["/echo"] == 4


async def test_tell_carries_the_sender(nats_server: NatsServer) -> None:
    seen: list[tuple[Any, str | None]] = []
    async with joined(nats_server, "a", "b") as [(a, ca), (b, _cb)]:
        await b.spawn(recorder(seen), name="rec")
        await until(lambda: ca.hosts("/rec"))
        for n in range(5):
            a.send("/rec", codec.encode(n, "json"), sender="/from/a é")
        await until(lambda: len(seen) == 5)
        assert [codec.decode(m) for m, _s in seen] == [0, 1, 2, 3, 4]
        assert {s for _m, s in seen} == {"/from/a é"}


async def test_publish_reaches_subscribers_on_every_node(nats_server: NatsServer) -> None:
    seen_a: list[tuple[Any, str | None]] = []
    seen_b: list[tuple[Any, str | None]] = []
    seen_c: list[tuple[Any, str | None]] = []
    async with joined(nats_server, "a", "b", "c") as [(a, ca), (b, _), (c, _)]:
        await a.spawn(recorder(seen_a), name="ra")
        await b.spawn(recorder(seen_b), name="rb")
        await c.spawn(recorder(seen_c), name="rc")
        a.subscribe("orders.*.created", "/ra")
        b.subscribe("orders.#", "/rb")
        c.subscribe("other", "/rc")
        await until(lambda: len(ca.nodes()) == 2)
        # the topic subscriptions are live from the join (its barrier)
        assert a.publish("orders.eu west.created", codec.encode(1, "json"), sender="me") == 1
        await until(lambda: seen_a and seen_b)
        assert seen_b[0][1] == "me"
        await stays(lambda: len(seen_a) == len(seen_b) == 1 and seen_c == [])
        # nobody anywhere: no dead letter for the other nodes' lack of subscribers
        count = b.broker.dead_letter_count
        a.publish("nobody.here", codec.encode(1, "json"))
        await stays(lambda: b.broker.dead_letter_count == count)


async def test_timeout_is_an_ask_timeout_naming_the_address_and_node(
    nats_server: NatsServer,
) -> None:
    async with joined(nats_server, "a", "b") as [(a, ca), (b, _cb)]:
        await b.spawn(Slow, name="slow", shutdown=0.1)
        await until(lambda: ca.hosts("/slow"))
        with pytest.raises(AskTimeout, match=r"/slow.*\bb\b"):
            await a.ask("/slow", b"\x00", timeout=0.3)


async def test_no_responders_is_actor_dead_and_a_dead_letter(nats_server: NatsServer) -> None:
    async with joined(nats_server, "a", "b", poll=30.0) as [(a, ca), (b, cb)]:
        await b.spawn(Slow, name="gone", shutdown=0.1)
        await cb._sync_addresses()
        await cb._beat()
        await until(lambda: ca.hosts("/gone"))
        # b stops serving the address while its heartbeats still announce it; the
        # barrier (not nc.flush(), whose PING overtakes the queued UNSUB) makes sure
        # the server has dropped the interest before a asks
        await cb._served["/gone"].drain()  # type: ignore[no-untyped-call]
        await cb.barrier()
        with pytest.raises(ActorDeadError, match="no node serves /gone"):
            await a.ask("/gone", b"\x00", timeout=5)
        assert a.dead_letters[-1].to == "/gone"


async def test_barrier_returns_only_once_the_server_has_the_commands(
    nats_server: NatsServer,
) -> None:
    """The cause of a flaky no-responders test: nats-py's flush() writes its PING ahead
    of a queued SUB/UNSUB, so after it another connection could still see the old
    interest. After barrier() it never does (checked on many fresh subjects)."""
    async with joined(nats_server, "a", "b", poll=30.0) as [(_a, ca), (_b, cb)]:
        async def respond(msg: Any) -> None:
            await msg.respond(b"ok")

        for i in range(100):
            subject = f"airssys.test.barrier.{i}"
            sub = await cb.nc.subscribe(subject, cb=respond)
            await cb.barrier()
            assert (await ca.nc.request(subject, b"", timeout=5)).data == b"ok"
            await sub.unsubscribe()
            await cb.barrier()
            with pytest.raises(nats_errors.NoRespondersError):
                await ca.nc.request(subject, b"", timeout=5)


async def test_a_silent_node_leaves_the_view_and_its_asks_fail(nats_server: NatsServer) -> None:
    async with joined(nats_server, "a", heartbeat=0.1) as [(a, ca)]:
        down: list[str] = []
        ca.on_node_down(lambda info: down.append(info.name))
        async with open_system("b", storage="memory") as b:
            async with join_cluster(b, nats_server.url, node="b", heartbeat=0.1) as cb:
                await b.spawn(Slow, name="slow", shutdown=0.1)
                await until(lambda: ca.hosts("/slow"))
                asking: Awaitable[Any] = asyncio.ensure_future(a.ask("/slow", b"\x00", timeout=30))
                await until(lambda: cb.served_count.get("/slow"))
                # b goes silent (as if killed): no goodbye, heartbeats stop
                for task in cb._loops:
                    task.cancel()
                await cb.nc.close()
                with pytest.raises(ActorDeadError, match="node 'b'"):
                    await asking
                assert down == ["b"]
                assert not ca.hosts("/slow")


async def test_instances_on_two_nodes_are_balanced(nats_server: NatsServer) -> None:
    async with joined(nats_server, "a", "b", "c") as [(a, ca), (b, cb), (c, cc)]:
        await b.spawn_component(fixture_path("echo"), name="echo")
        await c.spawn_component(fixture_path("echo"), name="echo")
        await until(lambda: ca.where("/echo") == ["b", "c"])
        await asyncio.gather(
            *(a.ask("/echo", codec.encode(1, "json"), timeout=5) for _ in range(200))
        )
        assert cb.served_count["/echo"] + cc.served_count["/echo"] == 200
        assert cb.served_count["/echo"] > 0 and cc.served_count["/echo"] > 0


async def test_a_component_request_to_another_node_replies_through_handle_callback(
    nats_server: NatsServer,
) -> None:
    messaging = {"messaging": {"send": ["/#"], "publish": ["#"]}}
    async with joined(nats_server, "a", "b") as [(a, ca), (b, cb)]:
        await b.spawn_component(fixture_path("echo"), name="echo")
        await a.spawn_component(fixture_path("host"), name="host", capabilities=messaging)
        await until(lambda: ca.hosts("/echo"))
        request = codec.encode(b"ping", "raw")
        with capture_logs() as logs:
            correlation = await a.ask("/host", request, sender="/echo")
            correlation_id = correlation.decode()
            # the host sent to /echo on b, published, and requested /echo on b: the
            # reply came back through its handle-callback
            await until(lambda: [e["event"] for e in logs][-2:] == [correlation_id, "Uping"])
        assert cb.served_count["/echo"] == 2  # the send and the request
