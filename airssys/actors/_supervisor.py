"""OTP-style supervision: child specs, strategies, restart intensity and backoff.

Defaults (chosen for services that embed airssys; all overridable):

* strategy ``one_for_one``; restart ``permanent``; shutdown 5 s, then a kill;
* intensity 3 restarts within a period of 5 s: one more and the supervisor stops
  its children (in reverse order) and fails to its own parent;
* backoff: the first restart in a period is immediate; each further one waits
  ``backoff_base`` (10 ms) doubled per restart already in the period, capped at
  ``backoff_max`` (1 s).

Children follow Erlang/OTP's ``supervisor``:

* A child's spec outlives its actor. ``terminate_child`` (and ``ref.stop()`` of a
  supervised child) stops the actor and keeps the spec: the child is still listed
  and counted as a spec, not as active. ``restart_child`` starts it again in its
  place (a new actor at the same address); ``delete_child`` drops a stopped child's
  spec. A transient child that exits normally keeps its spec the same way. A
  temporary child's spec goes with its actor, whatever ended it.
* A restart that fails (the new instance's ``on_start`` raises) is retried through
  the supervisor's own mailbox, after the backoff, each attempt counted toward the
  intensity: between attempts the supervisor handles calls, exits and its own stop.
  The retry restarts the child that failed to start and, for ``rest_for_one``,
  those after it; children already restarted are left running. ``one_for_all``
  restarts every child again, as OTP does.

Deliberate differences from OTP:

* a child stopped on purpose (``terminate_child``, ``ref.stop()``, a transient's
  normal exit) stays stopped when a sibling's failure restarts the group under
  ``one_for_all`` or ``rest_for_one``; only ``restart_child`` starts it. OTP starts
  it with the group; here ``ref.stop()`` promises the actor is not restarted.
* a restart reuses the child's cell: its address, ``ActorRef`` and queued messages
  survive (OTP's child gets a new pid). ``restart_child`` after a stop makes a new
  actor at the same address; refs to the stopped one stay dead.
* ``which_children`` lists a child with no actor with the ref of its last actor
  (dead: ``ref.is_alive`` is False) and its state, where OTP gives ``undefined``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, final

from .._logging import get_logger, truncate
from ..broker import Backpressure
from ..errors import (
    ActorDeadError,
    ActorError,
    ActorStartError,
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    MailboxFull,
    NameTaken,
    RestartIntensityExceeded,
)
from ..messages import Envelope
from ..names import check_name
from ._actor import Actor, ActorState
from ._cell import BRUTAL_KILL, ActorCell, ChildExited, Shutdown

if TYPE_CHECKING:
    from ._ref import ActorRef

__all__ = (
    "ChildInfo",
    "ChildSpec",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorRef",
    "check_shutdown",
)

_log = get_logger("airssys.supervisor")


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
    """Never restarted; its spec is removed when its actor ends."""


_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], value: object, what: str) -> _E:
    """``value`` as a member of ``kind``; a ValueError/TypeError naming what is accepted."""
    accepted = ", ".join(repr(m.value) for m in kind)
    if not isinstance(value, str):
        raise TypeError(f"{what} must be one of {accepted}, got {value!r}")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{what} must be one of {accepted}, got {value!r}") from None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_shutdown(shutdown: object) -> Shutdown:
    """A valid shutdown (seconds >= 0, None, ``"brutal_kill"``), normalised; else raise."""
    accepted = f"a number of seconds >= 0, None (wait forever) or {BRUTAL_KILL!r}"
    if shutdown is None:
        return None
    if isinstance(shutdown, str):
        if shutdown == BRUTAL_KILL:
            return BRUTAL_KILL
        raise ValueError(f"shutdown must be {accepted}, got the unknown word {shutdown!r}")
    if isinstance(shutdown, bool) or not isinstance(shutdown, int | float):
        raise TypeError(f"shutdown must be {accepted}, got {shutdown!r}")
    seconds = float(shutdown)
    if not 0 <= seconds < math.inf:
        raise ValueError(f"shutdown must be {accepted}, got {shutdown!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start and look after one child.

    ``start`` makes a fresh actor each time: an ``Actor`` subclass or any
    zero-argument callable returning an actor (a ``Supervisor`` nests a tree).
    Every field is checked here: a bad value is a ``ValueError``/``TypeError``
    naming what is accepted, before any supervisor sees the spec.
    """

    id: str
    start: Callable[[], Actor]
    restart: Restart | str = Restart.PERMANENT
    shutdown: Shutdown = 5.0
    mailbox: int = 1000
    backpressure: Backpressure | str = Backpressure.WAIT

    def __post_init__(self) -> None:
        check_name(self.id, "child id")
        if not callable(self.start):
            raise TypeError(
                f"ChildSpec {self.id!r}: start must be an Actor subclass or a zero-argument "
                f"callable returning an actor, got {self.start!r}"
            )
        object.__setattr__(self, "restart", _choice(Restart, self.restart, "restart"))
        object.__setattr__(self, "shutdown", check_shutdown(self.shutdown))
        if not isinstance(self.mailbox, int) or isinstance(self.mailbox, bool):
            raise TypeError(f"mailbox must be an int >= 1 (its capacity), got {self.mailbox!r}")
        if self.mailbox < 1:
            raise ValueError(f"mailbox must be an int >= 1 (its capacity), got {self.mailbox!r}")
        object.__setattr__(
            self, "backpressure", _choice(Backpressure, self.backpressure, "backpressure")
        )


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of ``which_children``.

    A child whose spec is kept but whose actor stopped (``terminate_child``, a
    transient's normal exit) has the ref of its last actor, which is dead
    (``ref.is_alive`` is False), and that actor's last state (stopped or failed).
    """

    id: str
    ref: ActorRef
    state: ActorState
    restart: Restart
    supervisor: bool


class _Child:
    """A child spec and the cell of its current (or last) actor."""

    __slots__ = ("cell", "spec", "supervisor")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.cell: ActorCell | None = None
        self.supervisor = isinstance(spec.start, type) and issubclass(spec.start, Supervisor)


# --- commands, sent through the supervisor's mailbox -------------------------------------


class _StartChild:
    __slots__ = ("spec",)

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec


class _TerminateChild:
    __slots__ = ("cell", "child_id", "kill")

    def __init__(self, child_id: str, kill: bool, cell: ActorCell | None = None) -> None:
        self.child_id = child_id
        self.kill = kill
        self.cell = cell  # only this actor (a stale ref must not stop its successor)


class _RestartChild:
    __slots__ = ("child_id",)

    def __init__(self, child_id: str) -> None:
        self.child_id = child_id


class _DeleteChild:
    __slots__ = ("child_id",)

    def __init__(self, child_id: str) -> None:
        self.child_id = child_id


class _Retry:
    """The supervisor to itself: try the restart of ``child_id`` again."""

    __slots__ = ("child_id",)

    def __init__(self, child_id: str) -> None:
        self.child_id = child_id


class _Refused:
    """A command's error, carried back as a value: refusing a caller must not fail us."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _check_id(child_id: object) -> str:
    if not isinstance(child_id, str):
        raise TypeError(f"a child id is a str, got {child_id!r}")
    return child_id


class Supervisor(Actor):
    """An actor that starts children in order, watches them, and restarts them.

    Its ``start_child``, ``terminate_child``, ``restart_child`` and
    ``delete_child`` methods act at once: call them only from the supervisor's own
    handlers (a subclass). Everyone else goes through :class:`SupervisorRef`, whose
    methods of the same names are messages handled one at a time.
    """

    _supervises = True

    async def _stop_child(self, cell: ActorCell, *, kill: bool) -> None:
        await SupervisorRef(self.ref)._stop_child(cell, kill=kill)

    def _respec(self, cell: ActorCell, factory: Callable[[], Actor]) -> None:
        child = self._children.get(cell.name)
        if child is not None and child.cell is cell:
            child.spec = dataclasses.replace(child.spec, start=factory)

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        backoff_base: float = 0.01,
        backoff_max: float = 1.0,
        unhealthy_after: int = 3,
    ) -> None:
        self.strategy = _choice(Strategy, strategy, "strategy")
        if (
            not isinstance(unhealthy_after, int)
            or isinstance(unhealthy_after, bool)
            or unhealthy_after < 1
        ):
            raise ValueError(
                f"unhealthy_after must be an int >= 1 (restarts within the period), "
                f"got {unhealthy_after!r}"
            )
        self.unhealthy_after = unhealthy_after
        if not isinstance(intensity, int) or isinstance(intensity, bool) or intensity < 0:
            raise ValueError(f"intensity must be an int >= 0, got {intensity!r}")
        for what, value in (
            ("period", period),
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
        ):
            if not _number(value) or not 0 <= value < math.inf:
                raise ValueError(f"{what} must be a number of seconds >= 0, got {value!r}")
        if period <= 0:
            raise ValueError(f"period must be a number of seconds > 0, got {period!r}")
        self.intensity = intensity
        self.period = period
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._children: dict[str, _Child] = {}  # in start order
        for spec in children:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"a supervisor's children are ChildSpecs, got {spec!r}")
            if spec.id in self._children:
                raise NameTaken(f"two child specs share the id {spec.id!r}")
            self._children[spec.id] = _Child(spec)
        self._restarts: deque[float] = deque()
        self._restarted: deque[tuple[float, str]] = deque(maxlen=64)  # (when, child id)
        self._retries: dict[str, _Retry] = {}  # children waiting for a restart attempt
        self._timers: dict[str, asyncio.TimerHandle] = {}

    @property
    def _cell(self) -> ActorCell:
        return self.ref._cell

    # --- where a child is -------------------------------------------------------------

    def _find(self, child_id: str) -> _Child:
        child = self._children.get(child_id)
        if child is None:
            raise ChildNotFound(f"supervisor {self.ref.address} has no child {child_id!r}")
        return child

    def _has_actor(self, child: _Child) -> bool:
        """Running, or stopped only to be started again (OTP: a pid or ``restarting``)."""
        cell = child.cell
        return cell is not None and self._cell.children.get(cell.name) is cell

    @staticmethod
    def _running(cell: ActorCell) -> bool:
        return cell.task is not None and not cell.task.done()

    # --- starting -------------------------------------------------------------------

    async def on_start(self) -> None:
        for child in list(self._children.values()):
            await self._start_new(child)

    async def _start_new(self, child: _Child) -> ActorRef:
        """A new actor for ``child`` in a new cell, in the child's place in the order."""
        spec = child.spec
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
        child.cell = cell
        cells = self._cell.children
        cells[spec.id] = cell
        # keep the cells in spec order: the cell stops them in reverse of it
        ordered = [(cid, cells[cid]) for cid in self._children if cid in cells]
        others = [(name, c) for name, c in cells.items() if name not in self._children]
        cells.clear()
        cells.update(ordered + others)
        try:
            await cell.boot()
        except ActorStartError:
            cell.finalize(cell.last_error)
            raise
        child.supervisor = cell.supervises
        return cell.ref

    # --- the dynamic-children API (acting at once; see SupervisorRef) ---------------------

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        """Add ``spec`` after the existing children and start it.

        Refused with ``ChildAlreadyStarted`` when a child with that id has an actor,
        ``ChildAlreadyPresent`` when its spec is kept without one. When the child
        fails to start (``ActorStartError``) its spec is not kept.
        """
        if not isinstance(spec, ChildSpec):
            raise TypeError(
                f"start_child takes a ChildSpec (e.g. ChildSpec('worker', Worker)), got {spec!r}"
            )
        existing = self._children.get(spec.id)
        if existing is not None:
            if self._has_actor(existing):
                raise ChildAlreadyStarted(
                    f"supervisor {self.ref.address} already has a child {spec.id!r}"
                )
            raise ChildAlreadyPresent(
                f"supervisor {self.ref.address} keeps a stopped child {spec.id!r}: "
                f"restart_child or delete_child it"
            )
        child = _Child(spec)
        self._children[spec.id] = child
        try:
            return await self._start_new(child)
        except BaseException:
            if self._children.get(spec.id) is child:
                del self._children[spec.id]
            raise

    async def terminate_child(self, child_id: str, *, kill: bool = False) -> None:
        """Stop a child's actor (not restarted); its spec is kept unless it is temporary.

        Stopping a child that is already stopped does nothing. A child waiting for
        a restart attempt is stopped and the attempts end; the siblings waiting
        for it (rest_for_one, one_for_all) stay stopped too, as in OTP.
        """
        await self._terminate(self._find(_check_id(child_id)), kill=kill)

    async def _terminate(self, child: _Child, *, kill: bool) -> None:
        child_id = child.spec.id
        cell = child.cell
        waiting: list[str] = []
        if cell is not None and self._has_actor(child) and child_id in self._retries:
            waiting = [
                cid
                for cid in self._group(child_id)
                if cid != child_id and cid not in self._retries and self._waiting(cid)
            ]
        self._cancel_retry(child_id)
        if cell is not None and self._has_actor(child):
            await cell.stop(kill=kill)
        for cid in reversed(waiting):
            other = self._children.get(cid)
            if other is not None and other.cell is not None and self._waiting(cid):
                await other.cell.stop()
        if child.spec.restart is Restart.TEMPORARY and self._children.get(child_id) is child:
            del self._children[child_id]

    def _waiting(self, child_id: str) -> bool:
        """Stopped by a restart in progress, to be started again."""
        child = self._children[child_id]
        cell = child.cell
        return (
            cell is not None
            and self._has_actor(child)
            and not self._running(cell)
            and cell.state is ActorState.RESTARTING
        )

    async def restart_child(self, child_id: str) -> ActorRef:
        """Start a stopped child again, in its place; returns its new ref.

        Refused with ``ChildRunning`` / ``ChildRestarting`` when it has an actor.
        When it fails to start (``ActorStartError``) its spec stays, stopped. Does
        not count toward the restart intensity.
        """
        child = self._find(_check_id(child_id))
        if self._has_actor(child):
            raise self._busy(child, "restart")
        return await self._start_new(child)

    async def delete_child(self, child_id: str) -> None:
        """Drop the spec of a stopped child. Refused while it has an actor."""
        child = self._find(_check_id(child_id))
        if self._has_actor(child):
            raise self._busy(child, "delete")
        del self._children[child_id]

    def _busy(self, child: _Child, verb: str) -> ActorError:
        assert child.cell is not None
        where = f"supervisor {self.ref.address} cannot {verb} child {child.spec.id!r}"
        if self._running(child.cell):
            return ChildRunning(f"{where}: it is running (terminate_child it first)")
        return ChildRestarting(f"{where}: it is restarting (terminate_child it first)")

    # --- messages ------------------------------------------------------------------------

    async def on_message(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            await self._child_exited(message.cell, message.error)
            return None
        if isinstance(message, _Retry):
            await self._retry(message)
            return None
        try:
            if isinstance(message, _StartChild):
                return await self.start_child(message.spec)
            if isinstance(message, _TerminateChild):
                child = self._find(_check_id(message.child_id))
                if message.cell is None or child.cell is message.cell:
                    await self._terminate(child, kill=message.kill)
                return None  # else that actor is gone already: not its successor
            if isinstance(message, _RestartChild):
                return await self.restart_child(message.child_id)
            if isinstance(message, _DeleteChild):
                await self.delete_child(message.child_id)
                return None
        except (ActorError, TypeError, ValueError) as exc:
            return _Refused(exc)  # the caller's error; the supervisor carries on
        _log.warning(
            "supervisor ignores a message it does not understand",
            supervisor=self.ref.address,
            message=truncate(repr(message), 200),
        )
        return None

    # --- exits and restarts ---------------------------------------------------------------

    def _wants_restart(self, spec: ChildSpec, cell: ActorCell, error: BaseException | None) -> bool:
        if spec.restart is Restart.PERMANENT:
            return True
        if spec.restart is Restart.TRANSIENT:
            return error is not None or not cell.normal_exit
        return False

    async def _child_exited(self, cell: ActorCell, error: BaseException | None) -> None:
        child = self._children.get(cell.name)
        if child is None or child.cell is not cell or not self._has_actor(child):
            if not cell.mailbox.closed:
                cell.finalize(error)  # stopped on purpose meanwhile
            return
        if self._running(cell) or cell.state not in (ActorState.FAILED, ActorState.STOPPED):
            return  # stale: restarted since, or stopped for a sibling's restart
        if not self._wants_restart(child.spec, cell, error):
            cell.finalize(error)
            if child.spec.restart is Restart.TEMPORARY:
                del self._children[cell.name]
            return
        _log.info(
            "restarting",
            supervisor=self.ref.address,
            child=cell.address,
            strategy=self.strategy.value,
            error=truncate(repr(error)) if error else None,
        )
        self._restarted.append((time.monotonic(), cell.name))
        try:
            delay = self._next_delay()
        except RestartIntensityExceeded as exc:
            await self._give_up()
            raise exc from error
        await self._stop_group(cell.name)
        if delay > 0:
            self._schedule(cell.name, delay)
        else:
            await self._start_group(cell.name)

    def _group(self, child_id: str) -> list[str]:
        """The children a restart of ``child_id`` concerns, in start order.

        Children without an actor (stopped on purpose) are not part of it.
        """
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [child_id]
        ids = [cid for cid, child in self._children.items() if self._has_actor(child)]
        if self.strategy is Strategy.ONE_FOR_ALL:
            return ids
        return ids[ids.index(child_id) :]

    async def _stop_group(self, child_id: str) -> None:
        """Stop the group's other running members (reverse order) to start them again.

        Temporary members are stopped for good and their specs removed.
        """
        for cid in reversed(self._group(child_id)):
            child = self._children[cid]
            cell = child.cell
            assert cell is not None
            if cid == child_id:
                cell.state = ActorState.RESTARTING
            elif child.spec.restart is Restart.TEMPORARY:
                self._cancel_retry(cid)
                await cell.stop()
                del self._children[cid]
            else:
                if self._running(cell):
                    await cell.stop(for_restart=True)
                cell.state = ActorState.RESTARTING

    async def _start_group(self, child_id: str) -> None:
        """Start the group in order; on a failure, schedule a retry from that child."""
        for cid in self._group(child_id):
            child = self._children[cid]
            cell = child.cell
            assert cell is not None
            if self._running(cell):
                continue
            self._cancel_retry(cid)
            try:
                await cell.restart(0.0)
            except ActorStartError as exc:
                _log.warning(
                    "restart failed",
                    supervisor=self.ref.address,
                    child=cell.address,
                    error=truncate(repr(exc.__cause__ or exc)),
                )
                try:
                    delay = self._next_delay()
                except RestartIntensityExceeded as final:
                    await self._give_up()
                    raise final from exc
                cell.state = ActorState.RESTARTING
                self._schedule(cid, delay)
                return
            child.supervisor = cell.supervises

    async def _retry(self, retry: _Retry) -> None:
        child_id = retry.child_id
        if self._retries.get(child_id) is not retry:
            return  # stopped, or started with its group, since
        del self._retries[child_id]
        child = self._children.get(child_id)
        if child is None or child.cell is None or not self._has_actor(child):
            return
        if self._running(child.cell):
            return
        # children started since (start_child) or already restarted (one_for_all)
        # are stopped again, as OTP does; the ones before the failed one are kept
        await self._stop_group(child_id)
        await self._start_group(child_id)

    def _schedule(self, child_id: str, delay: float) -> None:
        """Hand control back to the mailbox; try ``child_id`` again after ``delay``."""
        self._cancel_retry(child_id)
        retry = _Retry(child_id)
        self._retries[child_id] = retry
        self._timers[child_id] = asyncio.get_running_loop().call_later(
            delay, self._post_retry, retry
        )

    def _post_retry(self, retry: _Retry) -> None:
        child_id = retry.child_id
        self._timers.pop(child_id, None)
        if self._retries.get(child_id) is not retry or self._cell.actor is not self:
            return
        mailbox = self._cell.mailbox
        if mailbox.closed:
            return
        try:
            posted = mailbox.put_nowait(Envelope(retry))
        except MailboxFull:
            posted = False
        if not posted:  # a full mailbox must not lose the restart: try again shortly
            self._timers[child_id] = asyncio.get_running_loop().call_later(
                max(self.backoff_base, 0.001), self._post_retry, retry
            )

    def _cancel_retry(self, child_id: str) -> None:
        self._retries.pop(child_id, None)
        timer = self._timers.pop(child_id, None)
        if timer is not None:
            timer.cancel()

    def _cancel_retries(self) -> None:
        for child_id in list(self._retries):
            self._cancel_retry(child_id)

    async def _give_up(self) -> None:
        """Intensity exceeded: stop every child (reverse order); the caller raises."""
        self._cancel_retries()
        await self._cell.stop_children()

    def crash_loop(self) -> str | None:
        """Why this supervisor is unhealthy: its children restarted ``unhealthy_after``
        times or more within its period (a crash loop); None while it is healthy."""
        now = time.monotonic()
        recent = [cid for when, cid in self._restarted if now - when <= self.period]
        if len(recent) < self.unhealthy_after:
            return None
        children = ", ".join(sorted(set(recent)))
        return (
            f"{self.ref.address} is crash-looping: {len(recent)} restarts in the last "
            f"{self.period:g} s ({children})"
        )

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

    async def on_failure(self, error: BaseException) -> None:
        self._cancel_retries()

    async def on_stop(self) -> None:
        self._cancel_retries()

    # --- introspection ------------------------------------------------------------------

    def which_children(self) -> list[ChildInfo]:
        """Every child spec, in start order, with its actor (or its last one)."""
        rows = []
        for cid, child in self._children.items():
            cell = child.cell
            if cell is None:  # not started yet (the supervisor is starting)
                continue
            rows.append(
                ChildInfo(
                    id=cid,
                    ref=cell.ref,
                    state=cell.state,
                    restart=Restart(child.spec.restart),
                    supervisor=child.supervisor,
                )
            )
        return rows

    def count_children(self) -> dict[str, int]:
        """OTP's counts: ``specs``; ``active`` (running actors); ``supervisors`` and
        ``workers`` (specs by kind, running or not)."""
        children = list(self._children.values())
        supervisors = sum(1 for c in children if c.supervisor)
        return {
            "specs": len(children),
            "active": sum(
                1
                for c in children
                if c.cell is not None and self._has_actor(c) and self._running(c.cell)
            ),
            "supervisors": supervisors,
            "workers": len(children) - supervisors,
        }


@final
class SupervisorRef:
    """A supervisor's handle: its ``ActorRef`` plus the dynamic-children API.

    The calls go through the supervisor's mailbox, one at a time, between its
    restarts. Errors (OTP's in brackets): ``ChildNotFound`` [not_found, also a
    KeyError], ``ChildRunning`` [running], ``ChildRestarting`` [restarting],
    ``ChildAlreadyPresent`` [already_present], ``ChildAlreadyStarted``
    [already_started] (both also ``NameTaken``), ``ActorStartError`` when the
    child's ``on_start`` fails.
    """

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

    async def _call(self, command: object) -> Any:
        result = await self.ref.ask(command, timeout=None)
        if isinstance(result, _Refused):
            raise result.error
        return result

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        """Start one more child (after the existing ones); returns once it started."""
        if not isinstance(spec, ChildSpec):
            raise TypeError(
                f"start_child takes a ChildSpec (e.g. ChildSpec('worker', Worker)), got {spec!r}"
            )
        ref: ActorRef = await self._call(_StartChild(spec))
        return ref

    async def terminate_child(self, child_id: str, *, kill: bool = False) -> None:
        """Stop a child (it is not restarted); its spec is kept unless it is temporary."""
        await self._call(_TerminateChild(_check_id(child_id), kill))

    async def _stop_child(self, cell: ActorCell, *, kill: bool = False) -> None:
        """``ActorRef.stop()`` of a child: stop that actor, never a successor at its id."""
        await self._call(_TerminateChild(cell.name, kill, cell))

    async def restart_child(self, child_id: str) -> ActorRef:
        """Start a stopped child again, in its place; returns its (new) ref."""
        ref: ActorRef = await self._call(_RestartChild(_check_id(child_id)))
        return ref

    async def delete_child(self, child_id: str) -> None:
        """Remove a stopped child's spec."""
        await self._call(_DeleteChild(_check_id(child_id)))

    def which_children(self) -> list[ChildInfo]:
        return self._supervisor().which_children()

    def count_children(self) -> dict[str, int]:
        return self._supervisor().count_children()

    def child(self, child_id: str) -> ActorRef:
        """The ref of a child that has an actor (running or restarting)."""
        sup = self._supervisor()
        child = sup._find(child_id)
        if child.cell is None or not sup._has_actor(child):
            raise ActorDeadError(
                f"child {child_id!r} of {self.address} is stopped (restart_child starts it)"
            )
        return child.cell.ref

    async def stop(self, *, kill: bool = False) -> None:
        await self.ref.stop(kill=kill)

    def __repr__(self) -> str:
        return f"<SupervisorRef {self.address} {self.state.value}>"
