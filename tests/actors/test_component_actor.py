"""ComponentActors under the broker: requests, pub/sub, crashes, dead letters, codecs."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from airssys import codec
from airssys.actors import Actor, ActorState, open_system
from airssys.errors import (
    ActorDeadError,
    AskTimeout,
    CodecError,
    ComponentTrap,
    DeadlineExceeded,
    HandlerError,
    ManifestError,
    PayloadTooLarge,
)
from airssys.runtime import Limits
from tests.actors.helpers import settle
from tests.conftest import fixture_path

# the host fixture messages its sender and publishes: grant it that
MESSAGING = {"messaging": {"send": ["/#"], "publish": ["#"]}}
HELLO = codec.encode("hello", "json")
POISON = codec.encode(b"poison", "raw")


def manifest(tmp_path: Path, fixture: str, limits: str = "") -> Path:
    path = tmp_path / f"{fixture}.toml"
    path.write_text(
        f'[component]\nname = "{fixture}"\nversion = "0.1.0"\n'
        f'wasm = "{fixture_path(fixture)}"\n\n[limits]\n{limits}'
    )
    return path


class Inbox(Actor):
    """A Python actor that keeps what it receives, with the sender."""

    def __init__(self) -> None:
        self.got: list[tuple[str | None, Any]] = []

    def on_message(self, message: Any) -> Any:
        self.got.append((self.sender, message))
        return None


async def test_spawn_from_component_toml(tmp_path: Path) -> None:
    path = manifest(tmp_path, "echo", 'memory = "2MiB"\ntimeout-ms = 50\nmailbox = 7\n')
    async with open_system(cache_dir=tmp_path) as system:
        ref = await system.spawn_component(path, name="echo")
        health = await system.health("/echo")
        assert health.alive and health.component == "echo"
        assert ref.mailbox.capacity == 7
        assert await system.ask("/echo", HELLO) == HELLO


async def test_bad_manifest_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = manifest(tmp_path, "echo", "fuel = 10\n")
    async with open_system(cache_dir=tmp_path) as system:
        with pytest.raises(ManifestError, match=r"echo.toml: unknown key limits.fuel; accepted"):
            await system.spawn_component(path)
        assert system.addresses == []


async def test_codec_round_trips_through_a_component(tmp_path: Path) -> None:
    value = {"n": 1, "items": ["a", "b"], "ok": True}
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_component(fixture_path("echo"), name="echo")
        for name in ("json", "cbor", "messagepack"):
            reply = await system.ask("/echo", codec.encode(value, name))
            assert codec.codec_of(reply).name == name
            assert codec.decode(reply) == value
        raw = bytes(range(256))
        assert codec.decode(await system.ask("/echo", codec.encode(raw, "raw"))) == raw


async def test_a_python_actor_may_reply_in_another_codec(tmp_path: Path) -> None:
    class Translator(Actor):
        def on_message(self, message: Any) -> Any:
            return codec.encode({"echo": codec.decode(message)}, "cbor")

    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn(Translator, name="t")
        reply = await system.ask("/t", codec.encode([1, 2], "json"))
        assert codec.codec_of(reply) is codec.CBOR
        assert codec.decode(reply) == {"echo": [1, 2]}


async def test_unknown_prefix_is_refused_and_the_component_keeps_serving(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_component(fixture_path("echo"), name="echo")
        with pytest.raises(CodecError, match="unknown multicodec prefix 0x7b"):
            await system.ask("/echo", b'{"no": "prefix"}')
        with pytest.raises(CodecError, match="not str"):
            system.send("/echo", "a str")
        assert system.dead_letters[-1].reason.startswith("a component takes bytes")
        assert await system.ask("/echo", HELLO) == HELLO


async def test_payload_too_large_is_refused_before_queueing(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_component(
            fixture_path("echo"), name="echo", limits=Limits(max_payload=64)
        )
        with pytest.raises(PayloadTooLarge, match="max-payload of 64 bytes for component '/echo'"):
            await system.ask("/echo", codec.encode(b"x" * 100, "raw"))
        assert await system.ask("/echo", HELLO) == HELLO


async def test_component_to_component_request_replies_through_handle_callback(
    tmp_path: Path,
) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_component(fixture_path("echo"), name="echo")
        await system.spawn_component(fixture_path("host"), name="host", capabilities=MESSAGING)
        request = codec.encode(b"ping", "raw")
        with capture_logs() as logs:
            correlation = await system.ask("/host", request, sender="/echo")
            correlation_id = correlation.decode()
            assert correlation_id.startswith("/host#")
            # handle-callback logs the correlation id, then the reply echo sent back
            await settle(lambda: [e["event"] for e in logs][-2:] == [correlation_id, "Uping"])
        assert request == b"Uping"


async def test_request_to_a_crashing_component_delivers_the_error(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [system.component_spec("trap", fixture_path("trap"))], name="sup"
        )
        await system.spawn_component(fixture_path("host"), name="host", capabilities=MESSAGING)
        with capture_logs() as logs:
            await system.ask("/host", POISON, sender="/sup/trap")
            await settle(
                lambda: any("trapped" in e["event"] and e.get("component") == "/host" for e in logs)
            )
        # the host's handle-callback logged the error at error level
        errors = [e for e in logs if e.get("component") == "/host" and e["log_level"] == "error"]
        assert "unreachable" in errors[0]["event"]


async def test_component_sends_to_a_python_actor_by_address(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        inbox = await system.spawn(Inbox, name="inbox")
        await system.spawn_component(fixture_path("host"), name="host", capabilities=MESSAGING)
        system.subscribe("fixture.#", inbox)
        await system.ask("/host", HELLO, sender="/inbox")
        actor = inbox._cell.actor
        assert isinstance(actor, Inbox)
        # send (to the sender), publish (fixture.events), request (to the sender)
        await settle(lambda: len(actor.got) == 3)
        assert actor.got == [("/host", HELLO)] * 3


async def test_publish_fans_out_to_three_subscribed_components(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        for i in range(3):
            ref = await system.spawn_component(
                fixture_path("counter"),
                name=f"c{i}",
                capabilities={"messaging": {"subscribe": ["orders.#"]}},
            )
            system.subscribe("orders.*.created" if i < 2 else "orders.#", ref)
        assert system.publish("orders.eu.created", HELLO) == 3
        assert system.publish("orders.eu.cancelled", HELLO) == 1  # only orders.#
        counts = [struct.unpack("<I", await system.ask(f"/c{i}", HELLO))[0] for i in range(3)]
        assert counts == [2, 2, 3]


async def test_crashing_component_restarts_while_neighbours_answer(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [
                system.component_spec("left", fixture_path("echo")),
                system.component_spec("trap", fixture_path("trap")),
                system.component_spec("right", fixture_path("echo")),
            ],
            name="sup",
        )
        trap = system.ref("/sup/trap")
        for _ in range(3):
            with pytest.raises(ComponentTrap, match="unreachable"):
                await system.ask("/sup/trap", POISON)
            assert await system.ask("/sup/left", HELLO) == HELLO
            assert await system.ask("/sup/right", HELLO) == HELLO
            await settle(lambda: trap.state is ActorState.RUNNING)
        assert await system.ask("/sup/trap", HELLO) == HELLO  # a fresh instance answers
        assert trap.restarts == 3
        assert system.ref("/sup/left").restarts == 0
        assert system.ref("/sup/right").restarts == 0


async def test_message_to_unknown_or_dead_address_is_a_dead_letter(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        with pytest.raises(ActorDeadError, match="no actor at '/nobody'"):
            system.send("/nobody", HELLO)
        letter = system.dead_letters[-1]
        assert (letter.to, letter.reason) == ("/nobody", "no actor at '/nobody'")
        ref = await system.spawn_component(fixture_path("echo"), name="echo")
        await ref.stop()
        with pytest.raises(ActorDeadError):
            await system.ask("/echo", HELLO)
        assert system.dead_letters[-1].to == "/echo"
        # from inside a component: its send to a dead address fails and is recorded
        await system.spawn_component(fixture_path("host"), name="host", capabilities=MESSAGING)
        with pytest.raises(HandlerError, match="no actor at '/ghost'"):
            await system.ask("/host", HELLO, sender="/ghost")
        assert system.dead_letters[-1].sender == "/host"
        assert system.publish("nobody.listens", HELLO) == 0
        assert system.dead_letters[-1].reason == "no subscribers for 'nobody.listens'"


async def test_ask_deadline_and_component_deadline(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [
                system.component_spec("spin", fixture_path("spin"), limits=Limits(timeout_ms=300)),
                system.component_spec("echo", fixture_path("echo")),
            ],
            name="sup",
        )
        with pytest.raises(AskTimeout, match="no reply from /sup/spin within 0.05 s"):
            await system.ask("/sup/spin", HELLO, timeout=0.05)
        # the event loop is free while the spinner runs on its worker thread
        assert await system.ask("/sup/echo", HELLO, timeout=1.0) == HELLO
        spin = system.ref("/sup/spin")
        await settle(lambda: spin.restarts == 1 and spin.state is ActorState.RUNNING)
        with pytest.raises(DeadlineExceeded, match="300 ms deadline"):
            await system.ask("/sup/spin", HELLO, timeout=5)


async def test_health_reports_calls_and_restarts(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path) as system:
        await system.spawn_supervisor(
            [system.component_spec("trap", fixture_path("trap"))], name="sup"
        )
        for _ in range(3):
            await system.ask("/sup/trap", HELLO)
        health = await system.health("/sup/trap")
        assert (health.calls, health.restarts, health.alive) == (3, 0, True)
        assert health.fuel_used_total > 0


async def test_auto_execution_moves_a_proven_fast_component_inline_and_back() -> None:
    """Default limits: a thread first, the loop once fast, the thread again once slow."""
    import struct as _struct

    from airssys.actors import PROBATION

    def iterations(n: int) -> bytes:
        return codec.encode(_struct.pack("<I", n), "raw")

    async with open_system() as system:
        await system.spawn_component(fixture_path("fuel"), name="fuel")
        assert (await system.health("/fuel")).on_loop is False
        for _ in range(40 * PROBATION):
            await system.ask("/fuel", iterations(10))
            if (await system.health("/fuel")).on_loop:
                break
        assert (await system.health("/fuel")).on_loop is True
        reply = await system.ask("/fuel", iterations(20_000_000), timeout=60)
        assert reply is not None  # the slow message still ran to completion
        health = await system.health("/fuel")
        assert health.on_loop is False
        assert health.restarts == 0


async def test_thread_execution_never_runs_on_the_loop() -> None:
    async with open_system() as system:
        await system.spawn_component(fixture_path("echo"), name="echo", execution="thread")
        for _ in range(600):
            await system.ask("/echo", HELLO)
        assert (await system.health("/echo")).on_loop is False
