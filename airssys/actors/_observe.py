"""A system's actors as plain values: the walk behind snapshot(), health_report()
and the metrics scrape (airssys.observability holds the value types)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._logging import truncate
from ..observability import ActorSnapshot, ComponentStats, Health, Observation
from ._component import ComponentActor
from ._supervisor import Supervisor

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._system import ActorSystem

__all__ = ("health", "observe", "snapshot", "walk")


def walk(system: ActorSystem) -> Iterator[ActorCell]:
    """Every actor, each parent before its children, top level in spawn order."""
    stack = list(reversed(list(system._top.values())))
    while stack:
        cell = stack.pop()
        yield cell
        stack.extend(reversed(list(cell.children.values())))


def _one(system: ActorSystem, cell: ActorCell) -> ActorSnapshot:
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


def _health(system: ActorSystem, loops: list[str]) -> Health:
    problems = [*system._escalations, *loops]
    return Health(not problems, tuple(problems))


def health(system: ActorSystem) -> Health:
    loops = []
    for cell in walk(system):
        actor = cell.actor
        if isinstance(actor, Supervisor):
            loop = actor.crash_loop()
            if loop is not None:
                loops.append(loop)
    return _health(system, loops)


def observe(system: ActorSystem) -> Observation:
    """Snapshots, component counters and health in one walk."""
    actors: list[ActorSnapshot] = []
    stats: dict[str, ComponentStats] = {}
    loops: list[str] = []
    for cell in walk(system):
        actors.append(_one(system, cell))
        actor = cell.actor
        if isinstance(actor, ComponentActor):
            stats[cell.address] = actor.stats
        elif isinstance(actor, Supervisor):
            loop = actor.crash_loop()
            if loop is not None:
                loops.append(loop)
    return Observation(
        actors, stats, _health(system, loops), dict(system.broker.dead_letter_reasons)
    )
