"""Progress of the waits a user sits through: compiling, building, installing, each
step of an update, a node's start-up.

The code that waits says so with :func:`phase` (``with phase("compile", detail=
"not in the compile cache"): ...``); whoever shows it listens (:func:`listen`): the
``airssys`` command (a Rich spinner on a terminal, a line per phase in a pipe, JSON
events with ``--json``), a node (lines in its log), a node's control client during
an update. Nobody listening costs one list lookup: a library stays quiet.

Events come from any thread (compiles run on executor threads). A phase's subject
is what it is about (a component's name, an address): given, else the innermost
:func:`about` of this thread or task.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = (
    "LineReporter",
    "Phase",
    "ProgressEvent",
    "about",
    "describe",
    "emit",
    "listen",
    "phase",
)

State = Literal["start", "done", "failed", "stopped"]
_subject: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "airssys_progress_subject", default=None
)
_listeners: list[Callable[[ProgressEvent], None]] = []
_lock = threading.Lock()
SHOW_AFTER: Final = 1.0
"""Seconds a phase runs before a line-per-phase reporter says it started."""


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A phase started, finished or failed (``seconds``: how long it took)."""

    phase: str
    subject: str
    state: State
    detail: str = ""
    seconds: float | None = None
    key: int = 0
    """The same for a phase's start and end (phases of one subject may nest)."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "progress": self.phase,
            "subject": self.subject,
            "state": self.state,
        }
        if self.detail:
            out["detail"] = self.detail
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 3)
        out["id"] = self.key
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressEvent:
        """An event as :meth:`as_dict` wrote it (from a node, over its socket)."""
        seconds = data.get("seconds")
        state = data.get("state")
        return cls(
            phase=str(data.get("progress", "?")),
            subject=str(data.get("subject", "")),
            state=state if state in ("start", "done", "failed", "stopped") else "done",
            detail=str(data.get("detail", "")),
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
            key=int(data["id"]) if isinstance(data.get("id"), int) else 0,
        )


def listen(callback: Callable[[ProgressEvent], None]) -> Callable[[], None]:
    """Call ``callback(event)`` for every event, from whichever thread emits it,
    until the returned function is called."""
    with _lock:
        _listeners.append(callback)

    def stop() -> None:
        with _lock, contextlib.suppress(ValueError):
            _listeners.remove(callback)

    return stop


def emit(event: ProgressEvent) -> None:
    """Hand ``event`` to every listener (a listener that raises is skipped)."""
    if not _listeners:
        return
    with _lock:
        listeners = list(_listeners)
    for callback in listeners:
        with contextlib.suppress(Exception):
            callback(event)


@contextlib.contextmanager
def about(subject: str) -> Iterator[None]:
    """Phases inside this block (same thread or task) are about ``subject``."""
    token = _subject.set(subject)
    try:
        yield
    finally:
        _subject.reset(token)


_keys = iter(range(1, 1 << 62))


class Phase:
    """A phase in progress: set :attr:`detail` to change what its end says (e.g. a
    build learns only at its end whether the cache had it)."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail


@contextlib.contextmanager
def phase(name: str, subject: str | None = None, *, detail: str = "") -> Iterator[Phase]:
    """Report the block as phase ``name``: its start, then done (or failed) with the
    seconds it took."""
    handle = Phase(detail)
    if not _listeners:
        yield handle
        return
    what = subject or _subject.get() or "airssys"
    key = next(_keys)
    emit(ProgressEvent(name, what, "start", detail, key=key))
    started = time.perf_counter()
    try:
        yield handle
    except BaseException as exc:
        took = time.perf_counter() - started
        # an Exception fails the phase; Ctrl-C, a signal, a cancellation stop it
        state: State = "failed" if isinstance(exc, Exception) else "stopped"
        emit(ProgressEvent(name, what, state, handle.detail, took, key))
        raise
    emit(ProgressEvent(name, what, "done", handle.detail, time.perf_counter() - started, key))


def describe(event: ProgressEvent) -> str:
    """One line for ``event``: ``echo: compile 12.3 s (not in the compile cache)``."""
    why = f" ({event.detail})" if event.detail else ""
    if event.state == "start":
        return f"{event.subject}: {event.phase}...{why}"
    took = f" {event.seconds:.1f} s" if event.seconds is not None else ""
    how = f" {event.state}" if event.state in ("failed", "stopped") else ""
    return f"{event.subject}: {event.phase}{how}{took}{why}"


class LineReporter:
    """Lines for a pipe or a log, ``write(line, event)``: a phase still running after
    :data:`SHOW_AFTER` seconds is announced (a long wait is never silent), and its end
    is a line with its time. A quicker phase is no wait: it is not shown, unless
    ``every`` (an update shows each of its steps, timed)."""

    def __init__(
        self,
        write: Callable[[str, ProgressEvent], None],
        *,
        after: float = SHOW_AFTER,
        every: bool = False,
    ) -> None:
        self._write = write
        self._after = after
        self.every = every
        self._timers: dict[int, threading.Timer] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        if event.state == "start":
            if self.every:
                return
            timer = threading.Timer(self._after, self._write, (describe(event), event))
            timer.daemon = True
            with self._lock:
                self._timers[event.key] = timer
            timer.start()
            return
        with self._lock:
            pending = self._timers.pop(event.key, None)
        if pending is not None:
            pending.cancel()
        long = (event.seconds or 0.0) >= self._after
        if event.state == "stopped":
            return  # what stopped it (Ctrl-C, a signal) is said by whoever stopped
        if self.every or long:  # a quick failure: the error says it all
            self._write(describe(event), event)

    def close(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
