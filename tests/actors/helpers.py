"""Actors that record what happens to them, for the supervision tests."""

from __future__ import annotations

import asyncio
from typing import Any

from airssys.actors import Actor


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


async def settle(condition: Any, timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)
