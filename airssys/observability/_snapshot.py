"""What is running, as plain values: the supervisor tree, counters and health.

``system.snapshot()`` and ``system.health_report()`` (airssys.actors) read the live
objects on the event loop's thread and copy what they need into these values, so
the result can be kept, compared, sent over the control socket or rendered, while
the system goes on. The exporters here read them through :class:`Observable`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._stats import ComponentStats

__all__ = ("ActorSnapshot", "Health", "Observable", "Observation")


@dataclass(frozen=True, slots=True)
class ActorSnapshot:
    """One actor, as it was when the snapshot was taken."""

    address: str
    parent: str | None
    kind: str
    """``supervisor``, ``component`` or ``actor``."""
    state: str
    """starting, running, restarting, stopping, stopped or failed."""
    restarts: int
    queued: int
    """Mailbox depth."""
    capacity: int
    processed: int
    """Messages answered (ok or error), all incarnations; a message that killed
    its instance counts in ``traps``, not here."""
    in_hand: int
    """Messages taken from the mailbox and being handled now."""
    dropped: int
    """Dropped by the mailbox's ``drop`` backpressure."""
    last_error: str | None
    component: str | None = None
    version: str | None = None
    digest: str | None = None
    trust: str | None = None
    calls: int = 0
    """Messages the component answered (ok or error)."""
    errors: int = 0
    """Of those, answered with an error."""
    traps: int = 0
    """Messages that killed an instance (trap, fuel, deadline, memory cap)."""
    fuel: int = 0
    """Fuel consumed, all incarnations."""
    memory_limit: int | None = None
    """The component's linear-memory cap in bytes."""
    denials: int = 0
    """Capability denials."""
    on_loop: bool | None = None
    """True while the component runs inline on the event loop."""
    healthy: bool = True
    """False for a supervisor that is crash-looping."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Health:
    """Healthy, or the problems that make the system unhealthy (one line each)."""

    healthy: bool
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "problems": list(self.problems)}


@dataclass(frozen=True, slots=True)
class Observation:
    """One look at a whole system, taken in one walk of its tree (what a scrape reads)."""

    actors: list[ActorSnapshot]
    """Every actor, each parent before its children."""
    stats: dict[str, ComponentStats]
    """A component's live counters (latency histogram, host calls), by address."""
    health: Health
    dead_letters: dict[str, int]
    """Dead letters so far, by kind of reason."""


class Observable(Protocol):
    """What the observability exporters read: an ActorSystem."""

    def observe(self) -> Observation: ...
