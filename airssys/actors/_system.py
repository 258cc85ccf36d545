"""The actor system: owns every actor task; nothing runs after it closes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog

from ..errors import ActorDeadError, ActorError, NameTaken
from ._actor import Actor
from ._cell import ActorCell, Shutdown
from ._mailbox import Backpressure
from ._ref import ActorRef
from ._supervisor import ChildSpec, Strategy, Supervisor, SupervisorRef

__all__ = ("ActorSystem", "open_system")

_log = structlog.get_logger("airssys.system")


class ActorSystem:
    """Spawns, finds and stops actors. Create it with :func:`open_system`."""

    def __init__(self, name: str = "airssys") -> None:
        self.name = name
        self._cells: dict[str, ActorCell] = {}
        self._top: dict[str, ActorCell] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False

    # --- registry (used by cells) -----------------------------------------------------

    def _register(self, cell: ActorCell) -> None:
        existing = self._cells.get(cell.address)
        if existing is not None and existing is not cell:
            raise NameTaken(f"an actor is already registered at {cell.address}")
        self._cells[cell.address] = cell

    def _forget(self, cell: ActorCell) -> None:
        if self._cells.get(cell.address) is cell:
            del self._cells[cell.address]
        if cell.parent is None and self._top.get(cell.name) is cell:
            del self._top[cell.name]

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- spawning ----------------------------------------------------------------------

    async def spawn(
        self,
        actor: Callable[[], Actor],
        *,
        name: str | None = None,
        mailbox: int = 1000,
        backpressure: Backpressure | str = Backpressure.WAIT,
        shutdown: Shutdown = 5.0,
    ) -> ActorRef:
        """Start a top-level actor; returns once ``on_start`` has completed.

        ``actor`` is an Actor subclass or a zero-argument factory. Raises
        ``ActorStartError`` (cause chained) when starting fails, ``NameTaken`` when
        the name is in use.
        """
        if self._closed:
            raise ActorError(f"actor system {self.name!r} is closed")
        if name is None:
            base = getattr(actor, "__name__", "actor").lower()
            name = f"{base}-{next(self._ids)}"
        if not name or "/" in name:
            raise ValueError(f"actor names are non-empty and contain no '/', got {name!r}")
        if name in self._top:
            raise NameTaken(f"an actor named {name!r} already exists (address /{name})")
        cell = ActorCell(
            self,
            actor,
            name=name,
            parent=None,
            capacity=mailbox,
            backpressure=backpressure,
            shutdown=shutdown,
        )
        self._register(cell)
        self._top[name] = cell
        try:
            await cell.boot()
        except BaseException:
            cell.finalize(cell.last_error)
            raise
        return cell.ref

    async def spawn_supervisor(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        name: str | None = None,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        backoff_base: float = 0.01,
        backoff_max: float = 1.0,
        shutdown: Shutdown = None,
    ) -> SupervisorRef:
        """Start a top-level supervisor and its children, in order."""

        def make() -> Supervisor:
            return Supervisor(
                children,
                strategy=strategy,
                intensity=intensity,
                period=period,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
            )

        ref = await self.spawn(
            make, name=name or f"supervisor-{next(self._ids)}", mailbox=10_000, shutdown=shutdown
        )
        return SupervisorRef(ref)

    # --- finding and stopping --------------------------------------------------------------

    def lookup(self, address: str) -> ActorRef | None:
        """The actor at ``address`` (e.g. ``/sup/worker``), or None."""
        cell = self._cells.get(address)
        return cell.ref if cell is not None else None

    def ref(self, address: str) -> ActorRef:
        """The actor at ``address``; raises ``ActorDeadError`` when there is none."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorDeadError(f"no actor at {address!r}")
        return cell.ref

    @property
    def addresses(self) -> list[str]:
        return list(self._cells)

    async def stop(self, target: ActorRef | str, *, kill: bool = False) -> None:
        ref = self.ref(target) if isinstance(target, str) else target
        await ref.stop(kill=kill)

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Stop every actor (top-level ones in reverse spawn order), then wait for all tasks."""
        self._closed = True
        for cell in reversed(list(self._top.values())):
            await cell.stop()
        leftovers = [t for t in self._tasks if not t.done()]
        for task in leftovers:  # pragma: no cover - only if an actor escaped its parent
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers)


@asynccontextmanager
async def open_system(name: str = "airssys") -> AsyncIterator[ActorSystem]:
    """``async with open_system() as system:`` — every actor stops when the block ends."""
    system = ActorSystem(name)
    try:
        yield system
    finally:
        await asyncio.shield(_close(system))


async def _close(system: ActorSystem) -> Any:
    await system.aclose()
