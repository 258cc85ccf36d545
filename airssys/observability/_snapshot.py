"""What is running, as plain values: the supervisor tree, counters and health.

``system.snapshot()`` and ``system.health()`` read the live objects on the event
loop's thread and copy what they need, so the result can be kept, compared, sent
over the control socket or rendered, while the system goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .._logging import truncate

if TYPE_CHECKING:
    from ..actors._cell import ActorCell
    from ..actors._system import ActorSystem

__all__ = ("ActorSnapshot", "Health", "health", "snapshot")


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


def walk(system: ActorSystem) -> Iterator[ActorCell]:
    """Every actor, each parent before its children, top level in spawn order."""
    stack = list(reversed(list(system._top.values())))
    while stack:
        cell = stack.pop()
        yield cell
        stack.extend(reversed(list(cell.children.values())))


def _one(system: ActorSystem, cell: ActorCell) -> ActorSnapshot:
    from ..actors._component import ComponentActor
    from ..actors._supervisor import Supervisor

    actor = cell.actor
    mailbox = cell.mailbox
    error = cell.last_error
    common: dict[str, Any] = {
        "address": cell.address,
        "parent": cell.parent.address if cell.parent is not None else None,
        "state": cell.state.value,
        "restarts": cell.restarts,
        "queued": len(mailbox),
        "capacity": mailbox.capacity,
        "processed": mailbox.processed,
        # a batch actor's batch in hand; a one-at-a-time actor's slot is reused
        "in_hand": len(cell._in_hand) if getattr(actor, "max_batch", 1) > 1 else 0,
        "dropped": mailbox.dropped,
        "last_error": truncate(repr(error), 300) if error is not None else None,
    }
    if isinstance(actor, Supervisor):
        return ActorSnapshot(kind="supervisor", healthy=actor.crash_loop() is None, **common)
    if isinstance(actor, ComponentActor):
        stats, admission = actor.stats, actor.admission
        return ActorSnapshot(
            kind="component",
            component=actor.component.name,
            version=admission.version or None,
            digest=admission.digest,
            trust=admission.trust.value,
            calls=stats.handled,
            errors=stats.errors,
            traps=stats.traps,
            fuel=actor.fuel_used,
            memory_limit=actor.limits.memory,
            denials=system.audit.denials(cell.address),
            on_loop=actor.inline_now,
            **common,
        )
    return ActorSnapshot(kind="actor", **common)


def snapshot(system: ActorSystem) -> list[ActorSnapshot]:
    return [_one(system, cell) for cell in walk(system)]


def health(system: ActorSystem) -> Health:
    from ..actors._supervisor import Supervisor

    problems = list(system._escalations)
    for cell in walk(system):
        actor = cell.actor
        if isinstance(actor, Supervisor):
            loop = actor.crash_loop()
            if loop is not None:
                problems.append(loop)
    return Health(not problems, tuple(problems))
