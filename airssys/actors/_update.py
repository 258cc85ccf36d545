"""Hot update, blue-green: a new version of a component takes over an address.

``system.update(address, source)``:

1. the new version is loaded and admitted by the policy (its manifest's grants),
   then started *beside* the running one: a fresh instance, while the old one
   goes on serving;
2. it must answer a health probe (a HEALTH message, run on the new instance);
   if it fails to start or to answer, it is closed and the old version never
   noticed (``UpdateFailed``);
3. the switch: the address's mailbox is handed to the new version between two
   batches. The old version finishes the batch in hand (asks it took are answered
   by it); every message queued behind is handled by the new one, in order. No
   message is copied, moved or dropped: the mailbox is the same one, so nothing is
   lost and each sender's order is kept. The address, its ``ActorRef``s, its
   counters and its storage namespace stay;
4. probation: when the new version fails within ``probation`` seconds, the
   address rolls back to the previous version on its own (the supervisor's
   restart, or for a top-level actor an immediate restart, uses the previous
   version's factory again).

``system.rollback(address)`` returns to the previous version on demand, the same
blue-green way. ``system.versions(address)`` lists what served it.

A durable component (docs/durability.md) takes over at the switch, a fence between
two batches of the serving version (``ComponentActor._take_over``): the serving
version's snapshot goes into the new one when both export it; otherwise the new
version replays the journal when it starts, catches up beside the serving version in
rounds (each replaying what was handled during the one before, until little is
left), then at the fence replays the last few messages, reproducing every recorded
reply, or the switch is refused and the serving version goes on. The fence
(``UpdateReport.switch_ms``) stays a few milliseconds; the whole call
(``update_ms``) grows with the journal when there is no snapshot export.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from .._logging import get_logger, truncate
from .._progress import about, phase
from ..errors import ActorDeadError, AirssysError
from ..errors import UpdateFailed as UpdateFailed
from ..messages import HEALTH, Envelope
from ._actor import Actor, ActorState
from ._component import ComponentActor, ComponentHealth, Execution
from ._loading import Capabilities, ComponentSource, load

if TYPE_CHECKING:
    from ..security import TrustLevel
    from ._cell import ActorCell
    from ._system import ActorSystem

__all__ = ("Probation", "UpdateFailed", "UpdateReport", "VersionInfo", "rollback", "update")

_log = get_logger("airssys.update")
DEFAULT_PROBATION = 5.0
_KEPT = 10
"""Versions remembered per address (a rollback goes back one at a time)."""
_FENCE_AT = 256
"""A durable update without the snapshot hand-over catches up beside the serving
version until a round replays at most this many messages (then the switch replays
what is left: a fence of a few milliseconds)..."""
_ROUNDS = 12
"""... or until this many rounds, or until a round no longer shrinks (a load that
grows the journal as fast as it is replayed: then the switch replays the rest)."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version that served an address."""

    version: str
    digest: str
    since: float
    """Wall-clock time it took over."""
    factory: Callable[[], Actor] = dataclasses.field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest, "since": self.since}


@dataclass(frozen=True, slots=True)
class UpdateReport:
    address: str
    old: VersionInfo
    new: VersionInfo
    switch_ms: float
    """The switch: from the end of the serving version's last batch to the new version
    owning the mailbox (the time the address handled nothing)."""
    update_ms: float
    """The whole call: load (and compile), start (a durable component's replay), probe,
    catch up and switch."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "old": self.old.as_dict(),
            "new": self.new.as_dict(),
            "switch_ms": self.switch_ms,
            "update_ms": self.update_ms,
        }


class Probation:
    """While active, a failure of the new version rolls the address back."""

    __slots__ = ("_on_fail", "until")

    def __init__(self, seconds: float, on_fail: Callable[[BaseException], None]) -> None:
        self.until = time.monotonic() + seconds
        self._on_fail = on_fail

    def active(self) -> bool:
        return time.monotonic() < self.until

    def failed(self, error: BaseException) -> None:
        self._on_fail(error)


def _component_cell(system: ActorSystem, address: str) -> ActorCell:
    cell = system._cells.get(address)
    if cell is None:
        raise ActorDeadError(f"no actor at {address!r}")
    if not isinstance(cell.actor, ComponentActor):
        raise UpdateFailed(f"{address} is not a component actor; only components are updated")
    if cell.state is not ActorState.RUNNING:
        raise UpdateFailed(f"{address} is {cell.state.value}; update it once it is running")
    return cell


def _info(actor: ComponentActor, factory: Callable[[], Actor]) -> VersionInfo:
    return VersionInfo(actor.admission.version or "", actor.admission.digest, time.time(), factory)


def history(system: ActorSystem, cell: ActorCell) -> list[VersionInfo]:
    """The versions that served ``cell``'s address, oldest first (the current last)."""
    versions = system._versions.get(cell.address)
    if versions is None:
        actor = cell.actor
        assert isinstance(actor, ComponentActor)
        versions = system._versions[cell.address] = [_info(actor, cell.factory)]
    return versions


def _set_factory(cell: ActorCell, factory: Callable[[], Actor]) -> None:
    """The cell's restarts, and its supervisor's spec (restart_child), use ``factory``."""
    cell.factory = factory
    parent = cell.parent
    if parent is not None and parent.actor is not None:
        parent.actor._respec(cell, factory)


async def _take_over(
    system: ActorSystem,
    cell: ActorCell,
    factory: Callable[[], Actor],
    *,
    probation: float,
    started: float,
    rollback_on_failure: bool,
) -> UpdateReport:
    """Start ``factory``'s actor beside the running one, probe it, switch."""
    versions = history(system, cell)
    old = versions[-1]
    new = factory()
    if not isinstance(new, ComponentActor):
        raise UpdateFailed(f"the factory for {cell.address} made {new!r}, not a ComponentActor")
    new.ref, new.system = cell.ref, system
    serving = cell.actor
    new.predecessor = serving if isinstance(serving, ComponentActor) else None
    try:
        with phase("start", cell.address):
            await new.on_start()
    except Exception as exc:
        await new.on_stop()
        raise UpdateFailed(
            f"the new version of {cell.address} failed to start: {truncate(repr(exc), 300)}; "
            f"{old.version or old.digest[:12]} keeps serving"
        ) from exc
    try:
        with phase("probe", cell.address):
            outcomes, failure = await new.on_batch([Envelope(HEALTH)])
        healthy = (
            failure is None
            and len(outcomes) == 1
            and outcomes[0][0]
            and isinstance(outcomes[0][1], ComponentHealth)
            and outcomes[0][1].alive
        )
        if not healthy:
            raise UpdateFailed(
                f"the new version of {cell.address} did not answer its health probe"
                + (f": {truncate(repr(failure), 300)}" if failure is not None else "")
            )
        try:  # a durable component replays most of what it missed beside the serving one
            # shown only for a durable component: for another there is nothing to do
            with phase("catch up", cell.address) if new.durable is not None else nullcontext():
                await _catch_up(new)
        except AirssysError as exc:
            raise UpdateFailed(
                f"the new version of {cell.address} cannot take over the journal: "
                f"{truncate(str(exc), 400)}; {old.version or old.digest[:12]} keeps serving"
            ) from exc
        if cell.actor is None or cell.state is not ActorState.RUNNING:
            raise UpdateFailed(f"{cell.address} stopped while its update was starting")
        previous = cell.factory
        _set_factory(cell, factory)
        try:
            with phase("switch", cell.address):
                switch_ms = await cell.swap(new)
        except BaseException:
            _set_factory(cell, previous)
            raise
        finally:
            new.predecessor = None  # the old version is not kept alive by the new
    except BaseException:
        await new.on_stop()
        raise
    update_ms = (time.perf_counter() - started) * 1e3
    current = _info(new, factory)
    versions.append(current)
    del versions[:-_KEPT]  # each keeps its compiled component: not forever
    if rollback_on_failure and probation > 0:
        cell.probation = Probation(probation, partial(_rolled_back, system, cell, old, current))
    _log.info(
        "updated",
        address=cell.address,
        old=old.version,
        new=current.version,
        digest=current.digest[:12],
        switch_ms=round(switch_ms, 2),
        update_ms=round(update_ms, 2),
    )
    return UpdateReport(cell.address, old, current, round(switch_ms, 3), round(update_ms, 3))


async def _catch_up(new: ComponentActor) -> None:
    """Replay, beside the serving version, what it handled since the new one started,
    round after round while each round is smaller than the one before, so that the
    switch (which handles nothing meanwhile) replays only the last few messages."""
    before: int | None = None
    for _ in range(_ROUNDS):
        replayed = await new.catch_up()
        if replayed <= _FENCE_AT or (before is not None and replayed * 4 > before * 3):
            return
        before = replayed


def _rolled_back(
    system: ActorSystem,
    cell: ActorCell,
    previous: VersionInfo,
    failed: VersionInfo,
    error: BaseException,
) -> None:
    """The new version failed on probation: its restart is the previous version."""
    _set_factory(cell, previous.factory)
    versions = system._versions.get(cell.address)
    if versions and versions[-1] is failed:
        versions.pop()
    for listener in system.rollback_listeners:
        try:
            listener(cell.address, failed.version, previous.version)
        except Exception:
            _log.exception("a rollback listener raised", address=cell.address)
    _log.warning(
        "update failed on probation; rolled back",
        address=cell.address,
        failed=failed.version,
        back_to=previous.version,
        error=truncate(repr(error)),
    )


def _load(address: str, runtime: Any, source: ComponentSource) -> Any:
    """``load`` on an executor thread, its progress (a compile) about ``address``."""
    with about(address):
        return load(runtime, source, None)


async def update(
    system: ActorSystem,
    address: str,
    source: ComponentSource,
    *,
    probation: float = DEFAULT_PROBATION,
    execution: Execution = "auto",
    trust: TrustLevel | str | None = None,
    capabilities: Capabilities = None,
) -> UpdateReport:
    started = time.perf_counter()
    if not isinstance(probation, int | float) or isinstance(probation, bool) or probation < 0:
        raise ValueError(f"probation must be a number of seconds >= 0, got {probation!r}")
    cell = _component_cell(system, address)
    actor = cell.actor
    assert isinstance(actor, ComponentActor)
    try:
        with phase("load", address):  # the compile, if any, is a phase of its own
            loaded = await asyncio.get_running_loop().run_in_executor(
                system.resources.instantiator(), partial(_load, address, system.runtime, source)
            )
        factory = system._factory(
            loaded,
            execution,
            trust if trust is not None else actor.admission.trust,
            capabilities,
            address,
            # a durable address stays durable, with its journal's settings
            actor.durability
            if loaded.manifest is None or loaded.manifest.durability is None
            else None,
        )
    except AirssysError as exc:
        raise UpdateFailed(f"the new version of {address} was refused: {exc}") from exc
    cell = _component_cell(system, address)  # still there, still running
    return await _take_over(
        system, cell, factory, probation=probation, started=started, rollback_on_failure=True
    )


async def rollback(system: ActorSystem, address: str) -> UpdateReport:
    started = time.perf_counter()
    cell = _component_cell(system, address)
    versions = history(system, cell)
    if len(versions) < 2:
        raise UpdateFailed(f"{address} has no previous version to roll back to")
    target = versions[-2]
    report = await _take_over(
        system, cell, target.factory, probation=0, started=started, rollback_on_failure=False
    )
    # back to the previous version: the history forgets the one rolled back
    del versions[-3:-1]
    return report
