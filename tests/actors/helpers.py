"""Actors that record what happens to them, for the supervision tests."""

from __future__ import annotations

import asyncio
from typing import Any

from airssys.actors import Actor
from tests.waiting import until


class Journal:
    """An ordered log of lifecycle events: ("start", "a"), ("stop", "b")..."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def starts(self) -> list[str]:
        return [who for what, who in self.events if what == "start"]

    def since(self, mark: int) -> list[tuple[str, str]]:
        return self.events[mark:]


class Worker(Actor):
    """Echoes; "crash" raises; "exit" stops normally; "hang" blocks forever."""

    def __init__(self, journal: Journal, tag: str) -> None:
        self.journal = journal
        self.tag = tag
        self.seen = 0

    async def on_start(self) -> None:
        self.journal.events.append(("start", self.tag))

    async def on_message(self, message: Any) -> Any:
        self.seen += 1
        if message == "crash":
            raise RuntimeError(f"{self.tag} crashed")
        if message == "exit":
            self.stop()
            return "bye"
        if message == "hang":
            await asyncio.Event().wait()
        if message == "count":
            return self.seen
        return (self.tag, message)

    async def on_stop(self) -> None:
        self.journal.events.append(("stop", self.tag))


def worker(journal: Journal, tag: str) -> Any:
    return lambda: Worker(journal, tag)


class StartGate:
    """Decides whether a Flaky worker's next ``on_start`` fails, and counts attempts."""

    def __init__(self) -> None:
        self.attempts = 0
        self.fail_next = 0  # how many of the next starts fail
        self.fail_always = False

    def admit(self) -> bool:
        self.attempts += 1
        if self.fail_always:
            return False
        if self.fail_next:
            self.fail_next -= 1
            return False
        return True


class Flaky(Worker):
    """A Worker whose ``on_start`` fails (journal: ("fail", tag)) when its gate says so."""

    def __init__(self, journal: Journal, tag: str, gate: StartGate) -> None:
        super().__init__(journal, tag)
        self.gate = gate

    async def on_start(self) -> None:
        if not self.gate.admit():
            self.journal.events.append(("fail", self.tag))
            raise OSError(f"{self.tag} cannot start")
        await super().on_start()


def flaky(journal: Journal, tag: str, gate: StartGate) -> Any:
    return lambda: Flaky(journal, tag, gate)


async def settle(condition: Any, timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds (fails the test after ``timeout``)."""
    await until(condition, timeout, interval=0.001)
