"""The node's logs: airssys's own log lines, teed to stderr and kept in a bounded ring.

The node sets airssys's pipeline to JSON lines written to a :class:`LogTee`
(``configure_logging(stream=tee, json=True)``). Each line is parsed once: the
event goes into the :class:`LogRing` (the last 10,000; ``airssys logs`` reads it
through the control socket, ``--follow`` subscribes to it) and, when its level
is at least the display level, to stderr, as text (``key=value``) or, with
``--json-logs``, as the JSON line itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Any, Final

import structlog

from .._logging import LEVELS

__all__ = ("DEFAULT_RING", "LogRing", "LogTee", "matches", "render_text")

DEFAULT_RING: Final = 10_000
_LINE_MAX: Final = 64 * 1024  # a partial line longer than this is written as it is
# the keys a log event names an actor under
_ADDRESS_KEYS: Final = ("address", "actor", "child", "supervisor", "to", "sender")
_RENDERER: Final = structlog.dev.ConsoleRenderer(
    colors=False, exception_formatter=structlog.dev.plain_traceback
)

Event = dict[str, Any]


def level_number(event: Event) -> int:
    level = event.get("level")
    if isinstance(level, str):
        return LEVELS.get(level.lower(), LEVELS["info"])
    return LEVELS["info"]


def matches(event: Event, address: str | None) -> bool:
    """Does ``event`` concern the actor at ``address`` (or one below it)?"""
    if address is None:
        return True
    below = address.rstrip("/") + "/"
    for key in _ADDRESS_KEYS:
        value = event.get(key)
        if isinstance(value, str) and (value == address or value.startswith(below)):
            return True
    return False


def render_text(event: Event) -> str:
    """One event as the text line stderr shows (structlog's console format, no colours)."""
    values = {k: v for k, v in event.items() if k != "seq"}
    try:
        return str(_RENDERER(None, str(values.get("level", "info")), values))
    except Exception:  # a renderer failure must not lose the line
        return json.dumps(values, default=repr)


class LogRing:
    """The last ``capacity`` log events, with subscribers (thread-safe)."""

    def __init__(self, capacity: int = DEFAULT_RING) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._events: deque[Event] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._subscribers: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[Event], None]]] = {}
        self._ids = itertools.count(1)

    @property
    def capacity(self) -> int:
        maxlen = self._events.maxlen
        assert maxlen is not None
        return maxlen

    def append(self, event: Event) -> None:
        """Keep ``event`` (from any thread) and hand it to every subscriber."""
        with self._lock:
            event["seq"] = next(self._seq)
            self._events.append(event)
            subscribers = list(self._subscribers.values())
        for loop, callback in subscribers:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its subscriber is gone
                loop.call_soon_threadsafe(callback, event)

    def recent(self, *, address: str | None = None, limit: int | None = None) -> list[Event]:
        """The kept events (oldest first) concerning ``address``; ``limit`` keeps the newest."""
        with self._lock:
            events = list(self._events)
        found = [e for e in events if matches(e, address)]
        return found[-limit:] if limit is not None else found

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the running loop for each new event; returns the
        function that ends the subscription."""
        loop = asyncio.get_running_loop()
        key = next(self._ids)
        with self._lock:
            self._subscribers[key] = (loop, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    def __len__(self) -> int:
        return len(self._events)


class LogTee:
    """A text stream for airssys's JSON log lines: parses them into the ring and
    writes them to ``out`` (text, or JSON with ``json_lines``) from ``level`` up."""

    def __init__(
        self,
        ring: LogRing,
        *,
        out: IO[str] | None = None,
        json_lines: bool = False,
        level: int = LEVELS["info"],
    ) -> None:
        self.ring = ring
        self._out = out
        self.json_lines = json_lines
        self.level = level
        self._pending = ""
        self._lock = threading.Lock()
        self._out_lock = threading.Lock()

    @property
    def out(self) -> IO[str]:
        return self._out if self._out is not None else sys.stderr

    def write(self, text: str) -> int:
        with self._lock:
            data = self._pending + text
            *lines, self._pending = data.split("\n")
            if len(self._pending) > _LINE_MAX:
                lines.append(self._pending)
                self._pending = ""
        for line in lines:
            if line:
                self._line(line)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()

    def _line(self, line: str) -> None:
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        event: Event = parsed if isinstance(parsed, dict) else {"event": line, "level": "info"}
        self.ring.append(event)
        if level_number(event) >= self.level:
            self._show(line if self.json_lines and parsed is not None else None, event)

    def _show(self, raw: str | None, event: Event) -> None:
        text = raw if raw is not None else render_text(event)
        try:
            with self._out_lock:
                out = self.out
                out.write(text + "\n")
                out.flush()
        except (OSError, ValueError):  # stderr closed: the ring still has it
            pass

    def say(self, text: str, **values: Any) -> None:
        """A line of the node's own output (ready, the final summary): always shown,
        as ``text`` (or a JSON object with ``--json-logs``), and kept in the ring."""
        from datetime import UTC, datetime

        event: Event = {
            "event": text,
            "level": "info",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **values,
        }
        self.ring.append(event)
        shown = {k: v for k, v in event.items() if k != "seq"}
        self._show(json.dumps(shown, default=repr) if self.json_lines else text, event)
