"""OTP-style supervision: child specs, strategies, restart intensity and backoff.

Defaults (chosen for services that embed airssys; all overridable):

* strategy ``one_for_one``; restart ``permanent``; shutdown 5 s, then a kill;
* intensity 3 restarts within a period of 5 s: one more and the supervisor stops
  its children (in reverse order) and fails to its own parent;
* backoff: the first restart in a period is immediate; each further one waits
  ``backoff_base`` (10 ms) doubled per restart already in the period, capped at
  ``backoff_max`` (1 s).

A child that is not restarted (temporary; transient after a normal exit; one
stopped with ``terminate_child`` or ``ref.stop()``) is removed with its spec.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, final

import structlog

from ..errors import ActorStartError, NameTaken, RestartIntensityExceeded
from ._actor import Actor, ActorState
from ._cell import ActorCell, ChildExited, Shutdown
from ._mailbox import Backpressure

if TYPE_CHECKING:
    from ._ref import ActorRef

__all__ = ("ChildInfo", "ChildSpec", "Restart", "Strategy", "Supervisor", "SupervisorRef")

_log = structlog.get_logger("airssys.supervisor")


class Strategy(StrEnum):
    ONE_FOR_ONE = "one_for_one"
    """Restart only the child that failed."""
    ONE_FOR_ALL = "one_for_all"
    """Stop all children (reverse order), then restart all (in order)."""
    REST_FOR_ONE = "rest_for_one"
    """Stop the failed child's younger siblings, then restart it and them in order."""


class Restart(StrEnum):
    PERMANENT = "permanent"
    """Always restarted."""
    TRANSIENT = "transient"
    """Restarted only when it failed (an exception), not after a normal exit."""
    TEMPORARY = "temporary"
    """Never restarted."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start and look after one child.

    ``start`` makes a fresh actor each time: an ``Actor`` subclass or any
    zero-argument callable returning an actor (a ``Supervisor`` nests a tree).
    """

    id: str
    start: Callable[[], Actor]
    restart: Restart | str = Restart.PERMANENT
    shutdown: Shutdown = 5.0
    mailbox: int = 1000
    backpressure: Backpressure | str = Backpressure.WAIT

    def __post_init__(self) -> None:
        if not self.id or "/" in self.id:
            raise ValueError(f"child id must be a non-empty name without '/', got {self.id!r}")
        object.__setattr__(self, "restart", Restart(self.restart))
        object.__setattr__(self, "backpressure", Backpressure(self.backpressure))


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of ``which_children``."""

    id: str
    ref: ActorRef
    state: ActorState
    restart: Restart
    supervisor: bool


class _StartChild:
    __slots__ = ("spec",)

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec


class _TerminateChild:
    __slots__ = ("child_id", "kill")

    def __init__(self, child_id: str, kill: bool) -> None:
        self.child_id = child_id
        self.kill = kill


class Supervisor(Actor):
    """An actor that starts children in order, watches them, and restarts them."""

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        backoff_base: float = 0.01,
        backoff_max: float = 1.0,
    ) -> None:
        if intensity < 0 or period <= 0:
            raise ValueError("intensity must be >= 0 and period > 0")
        self.strategy = Strategy(strategy)
        self.intensity = intensity
        self.period = period
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._specs: dict[str, ChildSpec] = {}
        for spec in children:
            if spec.id in self._specs:
                raise NameTaken(f"two child specs share the id {spec.id!r}")
            self._specs[spec.id] = spec
        self._restarts: deque[float] = deque()

    @property
    def _cell(self) -> ActorCell:
        return self.ref._cell

    # --- starting -------------------------------------------------------------------

    async def on_start(self) -> None:
        for spec in list(self._specs.values()):
            await self._start(spec)

    async def _start(self, spec: ChildSpec) -> ActorRef:
        cell = ActorCell(
            self.system,
            spec.start,
            name=spec.id,
            parent=self._cell,
            capacity=spec.mailbox,
            backpressure=spec.backpressure,
            shutdown=spec.shutdown,
        )
        self.system._register(cell)
        self._cell.children[spec.id] = cell
        try:
            await cell.boot()
        except ActorStartError:
            cell.finalize(cell.last_error)
            raise
        return cell.ref

    # --- messages: exits and commands -------------------------------------------------

    async def on_message(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            await self._child_exited(message.cell, message.error)
            return None
        if isinstance(message, _StartChild):
            if message.spec.id in self._specs:  # errors go back as values: we must not fail
                return NameTaken(
                    f"supervisor {self.ref.address} already has a child {message.spec.id!r}"
                )
            self._specs[message.spec.id] = message.spec
            try:
                return await self._start(message.spec)
            except ActorStartError as exc:
                del self._specs[message.spec.id]
                return exc
        if isinstance(message, _TerminateChild):
            cell = self._cell.children.get(message.child_id)
            if cell is None:
                return KeyError(f"supervisor {self.ref.address} has no child {message.child_id!r}")
            await self._terminate_cell(cell, kill=message.kill)
            return None
        _log.warning(
            "supervisor ignores a message it does not understand",
            supervisor=self.ref.address,
            message=repr(message)[:200],
        )
        return None

    async def _terminate_cell(self, cell: ActorCell, *, kill: bool) -> None:
        self._specs.pop(cell.name, None)
        await cell.stop(kill=kill)

    def _wants_restart(self, spec: ChildSpec, cell: ActorCell, error: BaseException | None) -> bool:
        if spec.restart is Restart.PERMANENT:
            return True
        if spec.restart is Restart.TRANSIENT:
            return error is not None or not cell.normal_exit
        return False

    def _affected(self, cell: ActorCell) -> list[ActorCell]:
        children = list(self._cell.children.values())
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [cell]
        if self.strategy is Strategy.ONE_FOR_ALL:
            return children
        return children[children.index(cell) :]

    def _next_delay(self) -> float:
        """Record one restart; raise when intensity is exceeded; return its backoff."""
        now = time.monotonic()
        window = self._restarts
        while window and now - window[0] > self.period:
            window.popleft()
        earlier = len(window)
        window.append(now)
        if len(window) > self.intensity:
            raise RestartIntensityExceeded(
                f"supervisor {self.ref.address} exceeded its restart intensity "
                f"({self.intensity} restarts in {self.period:g} s)"
            )
        if earlier == 0:
            return 0.0
        return float(min(self.backoff_base * 2 ** min(earlier - 1, 60), self.backoff_max))

    async def _child_exited(self, cell: ActorCell, error: BaseException | None) -> None:
        spec = self._specs.get(cell.name)
        if spec is None or self._cell.children.get(cell.name) is not cell:
            cell.finalize(error)  # already terminated on purpose
            return
        if not self._wants_restart(spec, cell, error):
            del self._specs[cell.name]
            cell.finalize(error)
            return
        _log.info(
            "restarting",
            supervisor=self.ref.address,
            child=cell.address,
            strategy=self.strategy.value,
            error=repr(error) if error else None,
        )
        try:
            delay = self._next_delay()
        except RestartIntensityExceeded as exc:
            cell.finalize(error)
            await self._cell.stop_children()
            raise exc from error
        affected = self._affected(cell)
        for sibling in reversed(affected):
            if sibling is not cell:
                await sibling.stop(for_restart=True)
        # temporary siblings stopped for a sibling's sake are not restarted
        for sibling in affected:
            if sibling is not cell and self._specs[sibling.name].restart is Restart.TEMPORARY:
                del self._specs[sibling.name]
                sibling.finalize(None)
        todo = [c for c in affected if c.name in self._specs]
        while True:
            try:
                for i, child in enumerate(todo):
                    await child.restart(delay if i == 0 else 0.0)
                return
            except ActorStartError as exc:
                _log.warning("restart failed", supervisor=self.ref.address, error=repr(exc))
                for child in reversed(todo):
                    if child.task is not None and not child.task.done():
                        await child.stop(for_restart=True)
                try:
                    delay = self._next_delay()
                except RestartIntensityExceeded as final:
                    for child in todo:
                        child.finalize(exc)
                    await self._cell.stop_children()
                    raise final from exc

    # --- introspection ------------------------------------------------------------------

    def which_children(self) -> list[ChildInfo]:
        return [
            ChildInfo(
                id=cell.name,
                ref=cell.ref,
                state=cell.state,
                restart=Restart(self._specs[cell.name].restart),
                supervisor=cell.supervises,
            )
            for cell in self._cell.children.values()
            if cell.name in self._specs
        ]

    def count_children(self) -> dict[str, int]:
        rows = self.which_children()
        return {
            "specs": len(self._specs),
            "active": sum(1 for r in rows if r.state is ActorState.RUNNING),
            "supervisors": sum(1 for r in rows if r.supervisor),
            "workers": sum(1 for r in rows if not r.supervisor),
        }


@final
class SupervisorRef:
    """A supervisor's handle: its ``ActorRef`` plus the dynamic-children API."""

    __slots__ = ("ref",)

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref

    @property
    def address(self) -> str:
        return self.ref.address

    @property
    def state(self) -> ActorState:
        return self.ref.state

    def _supervisor(self) -> Supervisor:
        actor = self.ref._cell.actor
        assert isinstance(actor, Supervisor)
        return actor

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        """Start one more child (after the existing ones); returns once it started."""
        result = await self.ref.ask(_StartChild(spec), timeout=None)
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        ref: ActorRef = result
        return ref

    async def terminate_child(self, child_id: str, *, kill: bool = False) -> None:
        """Stop a child for good (it is not restarted; its spec is removed)."""
        result = await self.ref.ask(_TerminateChild(child_id, kill), timeout=None)
        if isinstance(result, BaseException):
            raise result

    def which_children(self) -> list[ChildInfo]:
        return self._supervisor().which_children()

    def count_children(self) -> dict[str, int]:
        return self._supervisor().count_children()

    def child(self, child_id: str) -> ActorRef:
        cell = self.ref._cell.children.get(child_id)
        if cell is None:
            raise KeyError(f"supervisor {self.address} has no child {child_id!r}")
        return cell.ref

    async def stop(self, *, kill: bool = False) -> None:
        await self.ref.stop(kill=kill)

    def __repr__(self) -> str:
        return f"<SupervisorRef {self.address} {self.state.value}>"
