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
from collections.abc import Callable, Generator
from typing import Any

__all__ = ("HOLD", "poll", "stays", "stays_sync", "until")

HOLD = 0.2
"""Seconds a "must not happen" check watches by default."""


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 500 else text[:500] + "..."


def _looks(
    check: Callable[[], Any], seconds: float, interval: float, until_true: bool
) -> Generator[float, None, Any]:
    """Look at ``check()`` until it turns (``until_true``: truthy, else falsy) or
    ``seconds`` pass; yields the pause before each next look, returns the last value
    through StopIteration. The callers sleep (on the loop or the thread) between."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if bool(value) == until_true or time.monotonic() >= deadline:
            return value
        yield interval


def _decide(value: Any, seconds: float, until_true: bool) -> Any:
    if until_true and not value:
        raise AssertionError(f"still not true after {seconds} s (last: {_describe(value)})")
    if not until_true and not value:
        raise AssertionError(f"stopped being true: {_describe(value)}")
    return value


async def until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``check()`` on the loop until it is truthy; that value. Fails at ``timeout``."""
    looks = _looks(check, timeout, interval, True)
    try:
        while True:
            await asyncio.sleep(next(looks))
    except StopIteration as done:
        return _decide(done.value, timeout, True)


def poll(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """:func:`until` for threads and subprocess tests: blocks between looks."""
    looks = _looks(check, timeout, interval, True)
    try:
        while True:
            time.sleep(next(looks))
    except StopIteration as done:
        return _decide(done.value, timeout, True)


async def stays(check: Callable[[], object], hold: float = HOLD, interval: float = 0.01) -> None:
    """Assert ``check()`` stays truthy for ``hold`` seconds, looking every ``interval``
    and once more at the end (the loop runs meanwhile)."""
    looks = _looks(check, hold, interval, False)
    try:
        while True:
            await asyncio.sleep(next(looks))
    except StopIteration as done:
        _decide(done.value, hold, False)


def stays_sync(check: Callable[[], object], hold: float = HOLD, interval: float = 0.02) -> None:
    """:func:`stays` for threads and subprocess tests."""
    looks = _looks(check, hold, interval, False)
    try:
        while True:
            time.sleep(next(looks))
    except StopIteration as done:
        _decide(done.value, hold, False)
