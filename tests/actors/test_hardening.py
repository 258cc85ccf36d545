"""Crashes and lost messages found by trying airssys as an adversary (issue 8)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from airssys import codec
from airssys.actors import Actor, ActorState, ChildSpec, open_system
from airssys.errors import ActorDeadError, AskTimeout, HandlerError, InvalidName
from airssys.messages import Envelope
from tests.actors.helpers import settle
from tests.conftest import ROOT, fixture_path

# the host fixture messages its sender and publishes: grant it that
MESSAGING = {"messaging": {"send": ["/#"], "publish": ["#"]}}
HELLO = codec.encode(b"hello", "raw")

# --- 1. names that reach native code -------------------------------------------------


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_a_lone_surrogate_name_is_refused_and_the_process_survives() -> None:
    """Once, a component named "\\ud800" aborted the process at its self-address call."""
    result = _run_python(
        f"""
        import asyncio, json
        from airssys import codec, open_system
        from airssys.errors import InvalidName

        async def main():
            async with open_system() as system:
                bad = json.loads('"\\\\ud800"')
                try:
                    await system.spawn_component({str(fixture_path("host"))!r}, name=bad)
                except InvalidName as exc:
                    print("refused:", exc)
                ref = await system.spawn_component({str(fixture_path("echo"))!r}, name="ok")
                print("neighbour:", await ref.ask(codec.encode(b"hi", "raw"), timeout=5))

        asyncio.run(main())
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout and "lone surrogate" in result.stdout
    assert "neighbour: b'Uhi'" in result.stdout


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "nul\x00", "tab\t", "x" * 256])
async def test_every_spawn_path_shares_the_name_rule(bad: str) -> None:
    async with open_system() as system:
        with pytest.raises(InvalidName):
            await system.spawn(Actor, name=bad)
        with pytest.raises(InvalidName):
            await system.spawn_component(fixture_path("echo"), name=bad)
        with pytest.raises(InvalidName):
            ChildSpec(bad, Actor)
        assert system.addresses == []


async def test_an_empty_component_name_is_not_replaced_by_a_generated_one() -> None:
    async with open_system() as system:
        with pytest.raises(InvalidName, match="empty"):
            await system.spawn_component(fixture_path("echo"), name="")
        assert system.lookup("/echo-1") is None


@pytest.mark.parametrize("sender", ["\ud800", "a\x00b", ""])
async def test_senders_are_checked_before_they_are_queued(sender: str) -> None:
    async with open_system() as system:
        ref = await system.spawn_component(fixture_path("echo"), name="echo")
        with pytest.raises(InvalidName):
            await system.ask("/echo", HELLO, sender=sender)
        with pytest.raises(InvalidName):
            await ref.ask(HELLO, sender=sender)
        with pytest.raises(InvalidName):
            system.send("/echo", HELLO, sender=sender)
        assert await ref.ask(HELLO) == HELLO
        assert ref.mailbox.processed == 1


# --- 2. one bad message must not lose a batch ---------------------------------------------


@pytest.mark.parametrize("execution", ["inline", "thread"])
async def test_an_unforeseen_error_mid_batch_answers_every_ask_and_crashes_the_actor(
    execution: str,
) -> None:
    async with open_system() as system:
        ref = await system.spawn_component(
            fixture_path("echo"),
            name="echo",
            execution=execution,  # type: ignore[arg-type]
        )
        instance = ref._cell.actor._instance  # type: ignore[union-attr]
        real = instance.handle_message_raw
        calls = 0

        def flaky(sender: str, payload: bytes) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
            return real(sender, payload)

        instance.handle_message_raw = flaky
        loop = asyncio.get_running_loop()
        replies = [loop.create_future() for _ in range(6)]
        for n, reply in enumerate(replies):  # queued before the actor runs: one batch
            ref._cell.mailbox.put_nowait(
                Envelope(codec.encode(f"m{n}".encode(), "raw"), "t", reply)
            )
        results = await asyncio.gather(*replies, return_exceptions=True)
        assert results[:2] == [codec.encode(b"m0", "raw"), codec.encode(b"m1", "raw")]
        assert isinstance(results[2], UnicodeEncodeError)
        # the rest never ran: the actor stopped (no supervisor), so they fail typed
        assert all(isinstance(r, ActorDeadError) for r in results[3:]), results[3:]
        await settle(lambda: ref.state is ActorState.FAILED)
        assert isinstance(ref.last_error, UnicodeEncodeError)
        assert instance.closed


async def test_the_rest_of_a_crashed_batch_goes_to_the_restarted_instance() -> None:
    async with open_system() as system:
        sup = await system.spawn_supervisor(
            [system.component_spec("echo", fixture_path("trap"))], name="sup"
        )
        ref = sup.child("echo")
        loop = asyncio.get_running_loop()
        payloads = [codec.encode(p, "raw") for p in (b"a", b"poison", b"b", b"c")]
        replies = [loop.create_future() for _ in payloads]
        for payload, reply in zip(payloads, replies, strict=True):
            ref._cell.mailbox.put_nowait(Envelope(payload, "t", reply))
        results = await asyncio.gather(*replies, return_exceptions=True)
        assert results[0] == payloads[0]
        assert isinstance(results[1], Exception)
        assert results[2:] == payloads[2:]
        assert ref.restarts == 1


class Doomed(BaseException):
    pass


class Thrower(Actor):
    def on_message(self, message: Any) -> Any:
        raise Doomed("not an Exception")


async def test_a_base_exception_in_on_message_answers_the_asker() -> None:
    async with open_system() as system:
        ref = await system.spawn(Thrower, name="thrower")
        with pytest.raises(ActorDeadError, match="Doomed"):
            await asyncio.wait_for(ref.ask("x"), timeout=30)
        await settle(lambda: ref.state is ActorState.FAILED)


# --- 5. a second cancellation while closing ----------------------------------------------


class SlowStop(Actor):
    async def on_stop(self) -> None:
        await asyncio.sleep(3600)  # only a kill ends this


async def test_a_second_cancel_while_closing_kills_and_still_waits_for_everything() -> None:
    entered = asyncio.Event()
    seen: dict[str, Any] = {}

    async def owner() -> None:
        async with open_system() as system:
            seen["system"] = system
            seen["ref"] = await system.spawn(SlowStop, name="slow")
            seen["echo"] = await system.spawn_component(
                fixture_path("echo"), name="echo", execution="thread"
            )
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(owner())
    await entered.wait()
    task.cancel()
    await settle(lambda: seen["ref"].state is ActorState.STOPPING)
    task.cancel()  # the second cancellation, while on_stop is still running
    with pytest.raises(asyncio.CancelledError):
        await task
    system = seen["system"]
    assert system.closed
    assert seen["ref"]._cell.task.done()
    assert not [t for t in system._tasks if not t.done()]
    assert not system.resources.threads_running
    assert system.runtime.closed
    assert not [t for t in threading.enumerate() if t.name == "airssys-epoch"]


# --- 6. a component learns at the call that its send was refused ------------------------------


class Blocker(Actor):
    """Holds the first message forever, so its one-slot mailbox fills behind it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def on_message(self, message: Any) -> Any:
        await self.release.wait()


@pytest.mark.parametrize("execution", ["inline", "thread"])
async def test_a_send_to_a_full_mailbox_is_an_err_for_the_component(execution: str) -> None:
    async with open_system() as system:
        blocker = await system.spawn(Blocker, name="blocker", mailbox=1)
        await blocker.tell("held")
        await settle(lambda: blocker.mailbox.queued == 0)
        await blocker.tell("queued")  # the mailbox is now full
        await system.spawn_component(
            fixture_path("host"),
            name="host",
            capabilities=MESSAGING,
            execution=execution,  # type: ignore[arg-type]
        )
        with pytest.raises(HandlerError, match="full"):
            await system.ask("/host", HELLO, sender="/blocker", timeout=5)
        assert blocker.mailbox.dropped == 1
        assert blocker.mailbox.queued == 1
        assert system.lookup("/host") is not None  # the component itself is fine


async def test_a_send_to_a_stopped_actor_is_an_err_for_the_component() -> None:
    async with open_system() as system:
        gone = await system.spawn(Blocker, name="gone")
        await gone.stop()
        await system.spawn_component(fixture_path("host"), name="host", capabilities=MESSAGING)
        with pytest.raises(HandlerError, match="no actor at '/gone'"):
            await system.ask("/host", HELLO, sender="/gone", timeout=5)


# --- 11. timeouts -------------------------------------------------------------------------


class Counter(Actor):
    def __init__(self) -> None:
        self.n = 0

    def on_message(self, message: Any) -> Any:
        self.n += 1
        return self.n


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "1"])
async def test_a_non_positive_timeout_is_refused_before_anything_is_sent(timeout: Any) -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, name="counter")
        with pytest.raises(ValueError, match="positive"):
            await ref.ask("x", timeout=timeout)
        with pytest.raises(ValueError, match="positive"):
            await system.ask("/counter", "x", timeout=timeout)
        assert await ref.ask("x") == 1  # nothing was processed before


# --- 12. deadlines hold only what is pending ----------------------------------------------------


async def test_answered_asks_are_released_whatever_their_timeouts() -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, name="counter")
        slow = asyncio.get_running_loop().create_future()
        # one ask that stays pending at the head, then many answered ones behind it
        await ref._cell.mailbox.put(Envelope("x", None, slow))
        system.broker._deadlines().add(slow, 3600.0, ref.address)
        for n in range(2000):
            await ref.ask("x", timeout=10.0 + n / 1000)  # distinct timeouts
        for _ in range(2000):
            await ref.ask("x", timeout=60.0)  # one timeout, behind the slow head
        assert system.broker.pending_asks == 1


async def test_a_deadline_still_fires_for_a_pending_ask() -> None:
    class Silent(Actor):
        async def on_message(self, message: Any) -> Any:
            await asyncio.sleep(3600)

    async with open_system() as system:
        ref = await system.spawn(Silent, name="silent", shutdown="brutal_kill")
        with pytest.raises(AskTimeout):
            await ref.ask("x", timeout=0.05)
        assert system.broker.pending_asks == 0


@pytest.mark.parametrize("address", ["no-slash", "/a//b", "/x/", "/bad\x00"])
async def test_a_malformed_address_is_an_invalid_name_not_a_dead_letter(address: str) -> None:
    async with open_system() as system:
        with pytest.raises(InvalidName):
            await system.ask(address, HELLO)
        with pytest.raises(InvalidName):
            system.send(address, HELLO)
        assert system.dead_letters == []


async def test_capabilities_that_are_not_a_table_are_a_manifest_error() -> None:
    from airssys.errors import ManifestError

    async with open_system() as system:
        with pytest.raises(ManifestError, match="expected a table"):
            await system.spawn_component(
                fixture_path("echo"),
                name="echo",
                capabilities=["network"],  # type: ignore[arg-type]
            )
