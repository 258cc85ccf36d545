"""Ask deadlines in O(1): one FIFO per timeout value and a single armed timer.

A ``loop.call_later`` per ask costs a heap push, a pop and a cancel: about a
quarter of an ask's time in the pipelined benchmark. Asks with the same timeout
expire in the order they were made, so an insertion-ordered queue per timeout
value suffices; the one timer is armed for the earliest head. An answered (or
cancelled) ask leaves its queue at once (:meth:`Deadlines.discard`), so memory is
bounded by the asks still pending, whatever the mix of timeouts.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from typing import Any

from ..errors import AskTimeout

__all__ = ("Deadlines",)

# per timeout value: future -> (deadline, address), oldest first
_Queue = OrderedDict["asyncio.Future[Any]", tuple[float, str]]


class Deadlines:
    __slots__ = ("_at", "_loop", "_queues", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, _Queue] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf

    def __len__(self) -> int:
        """Asks still waiting for a reply (or for their deadline)."""
        return sum(len(queue) for queue in self._queues.values())

    def add(self, future: asyncio.Future[Any], timeout: float, address: str) -> None:
        """Fail ``future`` with AskTimeout unless it is done within ``timeout`` seconds."""
        deadline = self._loop.time() + timeout
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = OrderedDict()
        queue[future] = (deadline, address)
        if deadline < self._at:
            self._arm(deadline)

    def discard(self, future: asyncio.Future[Any], timeout: float) -> None:
        """Forget an ask that has its answer (or was cancelled)."""
        queue = self._queues.get(timeout)
        if queue is not None and queue.pop(future, None) is not None and not queue:
            del self._queues[timeout]

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
            while queue:
                future, (deadline, address) = next(iter(queue.items()))
                if deadline > now and not future.done():
                    earliest = min(earliest, deadline)
                    break
                del queue[future]
                if not future.done():
                    future.set_exception(
                        AskTimeout(f"no reply from {address} within {timeout:g} s")
                    )
            if not queue:
                del self._queues[timeout]
        if earliest < math.inf:
            self._arm(earliest)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._at = None, math.inf
        self._queues.clear()
