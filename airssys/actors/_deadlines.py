"""Ask deadlines in O(1): one FIFO per timeout value and a single armed timer.

A ``loop.call_later`` per ask costs a heap push, a pop and a cancel: about a
quarter of an ask's time in the pipelined benchmark. Asks with the same timeout
expire in the order they were made, so a deque per timeout value suffices; the
one timer is armed for the earliest head. Answered asks are dropped from the
front as new ones arrive, so the queues stay as short as the asks in flight.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any

from ..errors import AskTimeout

__all__ = ("Deadlines",)

_Entry = tuple[float, "asyncio.Future[Any]", str]


class Deadlines:
    __slots__ = ("_at", "_loop", "_queues", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[_Entry]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf

    def add(self, future: asyncio.Future[Any], timeout: float, address: str) -> None:
        """Fail ``future`` with AskTimeout unless it is done within ``timeout`` seconds."""
        deadline = self._loop.time() + timeout
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        else:
            while queue and queue[0][1].done():
                queue.popleft()
        queue.append((deadline, future, address))
        if deadline < self._at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer, self._at = None, math.inf
        now = self._loop.time()
        earliest = math.inf
        for timeout, queue in list(self._queues.items()):
            while queue and (queue[0][1].done() or queue[0][0] <= now):
                _, future, address = queue.popleft()
                if not future.done():
                    future.set_exception(
                        AskTimeout(f"no reply from {address} within {timeout:g} s")
                    )
            if queue:
                earliest = min(earliest, queue[0][0])
            else:
                del self._queues[timeout]
        if earliest < math.inf:
            self._arm(earliest)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._at = None, math.inf
        self._queues.clear()
