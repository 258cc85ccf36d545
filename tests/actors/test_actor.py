"""Actors: spawning, addressing, tell/ask, stopping, lifecycle states."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airssys.actors import Actor, ActorState, open_system
from airssys.errors import ActorDeadError, ActorStartError, AskTimeout, NameTaken
from tests.actors.helpers import Journal, settle, worker


class Adder(Actor):
    def __init__(self) -> None:
        self.total = 0

    def on_message(self, message: Any) -> Any:
        self.total += message
        return self.total


async def test_spawn_returns_after_on_start() -> None:
    started = asyncio.Event()

    class Slow(Actor):
        async def on_start(self) -> None:
            await asyncio.sleep(0.01)
            started.set()

    async with open_system() as system:
        ref = await system.spawn(Slow, name="slow")
        assert started.is_set()
        assert ref.state is ActorState.RUNNING


async def test_start_error_reaches_the_caller_with_its_cause() -> None:
    class Broken(Actor):
        async def on_start(self) -> None:
            raise ConnectionError("database unreachable")

    async with open_system() as system:
        with pytest.raises(ActorStartError, match="/broken failed to start") as info:
            await system.spawn(Broken, name="broken")
        assert isinstance(info.value.__cause__, ConnectionError)
        assert system.lookup("/broken") is None


async def test_tell_and_ask_keep_order() -> None:
    async with open_system() as system:
        ref = await system.spawn(Adder, name="adder")
        for n in range(10):
            await ref.tell(n)
        ref.tell_nowait(100)
        assert await ref.ask(0) == 145
        assert ref.mailbox.processed == 12


async def test_names_are_unique_and_addresses_are_paths() -> None:
    async with open_system() as system:
        ref = await system.spawn(Adder, name="adder")
        assert ref.address == "/adder"
        assert system.lookup("/adder") == ref
        with pytest.raises(NameTaken, match="'adder' already exists"):
            await system.spawn(Adder, name="adder")
        anonymous = await system.spawn(Adder)
        assert anonymous.address.startswith("/adder-")


async def test_ask_a_dead_actor_raises() -> None:
    async with open_system() as system:
        ref = await system.spawn(Adder, name="adder")
        await ref.stop()
        assert ref.state is ActorState.STOPPED and not ref.is_alive
        with pytest.raises(ActorDeadError, match="/adder is stopped"):
            await ref.ask(1)
        with pytest.raises(ActorDeadError):
            ref.tell_nowait(1)
        with pytest.raises(ActorDeadError, match="no actor at '/adder'"):
            system.ref("/adder")


async def test_stopping_fails_every_unanswered_ask() -> None:
    journal = Journal()
    async with open_system() as system:
        ref = await system.spawn(worker(journal, "w"), name="w", shutdown=0.05)
        hung = asyncio.create_task(ref.ask("hang", timeout=None))
        queued = [asyncio.create_task(ref.ask(i, timeout=None)) for i in range(3)]
        await settle(lambda: ref.mailbox.queued == 3)
        await ref.stop()  # the hung message is killed after the shutdown timeout
        for task in [hung, *queued]:
            with pytest.raises(ActorDeadError):
                await task
        assert "stopped before handling the message" in str(queued[0].exception())
        assert "killed while handling" in str(hung.exception())


def _live_timers(loop: asyncio.AbstractEventLoop) -> int:
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return sum(1 for handle in scheduled if not handle.cancelled())


async def test_ask_timeout_raises_and_leaks_nothing() -> None:
    journal = Journal()
    async with open_system() as system:
        ref = await system.spawn(worker(journal, "w"), name="w", shutdown=0.01)
        loop = asyncio.get_running_loop()
        timers_before = _live_timers(loop)
        await ref.tell("hang")
        for _ in range(20):
            with pytest.raises(AskTimeout, match=r"no reply from /w within 0\.001 s"):
                await ref.ask("ping", timeout=0.001)
        timers_after = _live_timers(loop)
        assert timers_after == timers_before
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_failure_hooks_run_and_the_asker_gets_the_error() -> None:
    calls: list[str] = []

    class Fragile(Actor):
        def on_message(self, message: Any) -> Any:
            raise ValueError(f"cannot take {message}")

        async def on_failure(self, error: BaseException) -> None:
            calls.append(f"failure:{error}")

        async def on_stop(self) -> None:
            calls.append("stop")

    async with open_system() as system:
        ref = await system.spawn(Fragile, name="fragile")
        with pytest.raises(ValueError, match="cannot take 7"):
            await ref.ask(7)
        await settle(lambda: not ref.is_alive)
        assert ref.state is ActorState.FAILED
        assert isinstance(ref.last_error, ValueError)
    assert calls == ["failure:cannot take 7", "stop"]


async def test_lifecycle_states_are_visible() -> None:
    seen: list[ActorState] = []

    class Observer(Actor):
        async def on_start(self) -> None:
            seen.append(self.ref.state)

        def on_message(self, message: Any) -> Any:
            seen.append(self.ref.state)

        async def on_stop(self) -> None:
            seen.append(self.ref.state)

    async with open_system() as system:
        ref = await system.spawn(Observer, name="o")
        await ref.ask("hi")
        await ref.stop()
        seen.append(ref.state)
    assert seen == [
        ActorState.STARTING,
        ActorState.RUNNING,
        ActorState.STOPPING,
        ActorState.STOPPED,
    ]


async def test_actor_stopping_itself_is_a_normal_exit() -> None:
    journal = Journal()
    async with open_system() as system:
        ref = await system.spawn(worker(journal, "w"), name="w")
        assert await ref.ask("exit") == "bye"
        await settle(lambda: not ref.is_alive)
        assert ref.state is ActorState.STOPPED
    assert journal.events == [("start", "w"), ("stop", "w")]


async def test_busy_actor_does_not_starve_others() -> None:
    class Spinner(Actor):
        def on_message(self, message: Any) -> Any:
            return message

    async with open_system() as system:
        busy = await system.spawn(Spinner, name="busy", mailbox=100_000)
        other = await system.spawn(Adder, name="other")
        for i in range(50_000):
            busy.tell_nowait(i)
        assert await other.ask(1) == 1
        assert busy.mailbox.queued > 0  # the other actor answered while busy still had work


async def test_no_task_is_left_after_the_system_closes() -> None:
    journal = Journal()
    async with open_system() as system:
        for i in range(5):
            await system.spawn(worker(journal, f"w{i}"), name=f"w{i}")
        await system.spawn_supervisor([], name="sup")
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert system.addresses == []
    assert journal.starts() == [f"w{i}" for i in range(5)]
    assert [who for what, who in journal.events if what == "stop"] == [
        f"w{i}" for i in reversed(range(5))
    ]
