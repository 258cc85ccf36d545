"""What a message is on its way, shared by every layer that carries one.

A leaf: it imports nothing of airssys but the errors. The broker queues
:class:`Envelope` objects, actors take them, durability journals them, tracing
follows them; a component's request comes back to it as a :class:`Callback`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, Final

__all__ = (
    "DEFAULT_ASK_TIMEOUT",
    "HEALTH",
    "Callback",
    "Envelope",
    "capture_trace",
    "check_timeout",
)

DEFAULT_ASK_TIMEOUT: Final = 5.0
"""Seconds an ask waits for its reply unless told otherwise."""


def check_timeout(timeout: object) -> None:
    """Refuse an ask timeout that is not None or a positive, finite number of seconds."""
    if timeout is None:
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < math.inf
    ):
        raise ValueError(
            f"ask timeout must be a positive number of seconds (or None to wait "
            f"forever), got {timeout!r}"
        )


capture_trace: Callable[[], Any] | None = None
"""The trace hook: set while a system traces (airssys.observability) to a function
returning the current OpenTelemetry context, which each new envelope carries to the
span of its handling; None otherwise (then an envelope costs nothing more)."""


class Envelope:
    """One message on its way: the message, who sent it, where a reply goes, and
    (while tracing) the trace context it was sent in."""

    __slots__ = ("message", "reply", "sender", "seq", "trace")

    def __init__(
        self, message: Any, sender: str | None = None, reply: asyncio.Future[Any] | None = None
    ) -> None:
        self.message = message
        self.sender = sender
        self.reply = reply
        self.trace = capture_trace() if capture_trace is not None else None
        # its number in a durable component's journal (0: not journaled; -1: an ask,
        # journaled with its handling record)
        self.seq = 0


class Callback:
    """The outcome of a request a component made, on its way back to it."""

    __slots__ = ("correlation_id", "reply")

    def __init__(self, correlation_id: str, reply: bytes | BaseException) -> None:
        self.correlation_id = correlation_id
        self.reply = reply

    def __repr__(self) -> str:
        return f"Callback({self.correlation_id!r}, {self.reply!r})"


class _Health:
    def __repr__(self) -> str:
        return "HEALTH"


HEALTH: Final = _Health()
"""Ask a ComponentActor this to get a ``ComponentHealth`` through its mailbox."""
