"""Waiting in tests: the one place that decides how long a test waits and why.

* :func:`until` / :func:`poll`: a condition that must *become* true is polled with a
  deadline (a bound for a stuck test, not a measure: it may be generous).
* :func:`stays` / :func:`stays_sync`: a condition that must *remain* true (something
  that must not happen) is watched for a bounded time and checked throughout; never
  a bare sleep followed by an assert. These can only miss a late event, never fail
  on a slow machine.

Timing belongs in ``benches/``; nothing here asserts how fast anything was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ("HOLD", "poll", "stays", "stays_sync", "until")

HOLD = 0.2
"""Seconds a "must not happen" check watches by default."""


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 500 else text[:500] + "..."


def _looks(check: Callable[[], Any], seconds: float) -> Iterator[tuple[Any, bool]]:
    """``check()``'s value at each look, and whether ``seconds`` have passed by then."""
    deadline = time.monotonic() + seconds
    while True:
        yield check(), time.monotonic() >= deadline


async def until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``check()`` on the loop until it is truthy; that value. Fails at ``timeout``."""
    for value, late in _looks(check, timeout):
        if value:
            return value
        if late:
            raise AssertionError(f"still not true after {timeout} s (last: {_describe(value)})")
        await asyncio.sleep(interval)


def poll(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """:func:`until` for threads and subprocess tests: blocks between looks."""
    for value, late in _looks(check, timeout):
        if value:
            return value
        if late:
            raise AssertionError(f"still not true after {timeout} s (last: {_describe(value)})")
        time.sleep(interval)


async def stays(check: Callable[[], object], hold: float = HOLD, interval: float = 0.01) -> None:
    """Assert ``check()`` stays truthy for ``hold`` seconds, looking every ``interval``
    and once more at the end (the loop runs meanwhile)."""
    for value, late in _looks(check, hold):
        if not value:
            raise AssertionError(f"stopped being true: {_describe(value)}")
        if late:
            return
        await asyncio.sleep(interval)


def stays_sync(check: Callable[[], object], hold: float = HOLD, interval: float = 0.02) -> None:
    """:func:`stays` for threads and subprocess tests."""
    for value, late in _looks(check, hold):
        if not value:
            raise AssertionError(f"stopped being true: {_describe(value)}")
        if late:
            return
        time.sleep(interval)
