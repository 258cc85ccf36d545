"""The machinery behind one actor: its task, mailbox, state, children and exits.

A cell outlives the actor instances it hosts: a restart puts a fresh instance in
the same cell, so the address, the ``ActorRef`` and the queued messages survive.
The message being handled when the actor failed is lost (its asker gets the error).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .._logging import Throttle, get_logger, truncate
from ..broker import Backpressure, Mailbox, PayloadGate
from ..errors import ActorDeadError, ActorStartError
from ..messages import Envelope
from ..names import check_name
from ._actor import Actor, ActorState

if TYPE_CHECKING:
    from ..security import CompiledGrants
    from ._ref import ActorRef
    from ._system import ActorSystem
    from ._update import Probation

__all__ = ("BRUTAL_KILL", "ActorCell", "ChildExited", "Shutdown")

BRUTAL_KILL: Final = "brutal_kill"
Shutdown = float | None | str
"""Seconds to wait for a graceful stop before killing; None waits forever;
``"brutal_kill"`` cancels at once without running ``on_stop``."""

_YIELD_EVERY: Final = 64
_log = get_logger("airssys.actors")
# a told message that fails has nobody to answer: log it, but a flood only in summary
_failed_tell = Throttle(_log, "message failed", burst=10, window=10.0)


class ChildExited:
    """System message to a supervisor: one of its children ended by itself."""

    __slots__ = ("cell", "error")

    def __init__(self, cell: ActorCell, error: BaseException | None) -> None:
        self.cell = cell
        self.error = error


async def _quietly(what: str, cell: ActorCell, call: Any) -> None:
    try:
        await call
    except Exception:
        _log.exception(f"{what} raised", actor=cell.address)


class ActorCell:
    """Hosts one actor at one address. Driven by the system and the parent.

    It is the broker's endpoint for its address (``address``, ``mailbox``, ``gate``,
    ``grants``: plain attributes the broker reads on the way in).
    """

    def __init__(
        self,
        system: ActorSystem,
        factory: Callable[[], Actor],
        *,
        name: str,
        parent: ActorCell | None,
        capacity: int,
        backpressure: Backpressure | str,
        shutdown: Shutdown,
    ) -> None:
        from ._ref import ActorRef

        self.system = system
        self.factory = factory
        self.name = check_name(name)
        self.parent = parent
        self.address: str = f"{parent.address}/{name}" if parent else f"/{name}"
        self.shutdown = shutdown
        self.mailbox = Mailbox(capacity, Backpressure(backpressure), self.address)
        self.ref: ActorRef = ActorRef(self)
        self.state = ActorState.STARTING
        self.actor: Actor | None = None
        self.gate: PayloadGate | None = None
        """The actor's check of a message before it is queued (a component's)."""
        self.grants: CompiledGrants | None = None
        """The actor's compiled grants (a component's): what it may subscribe to."""
        self.task: asyncio.Task[None] | None = None
        self.children: dict[str, ActorCell] = {}
        self.restarts = 0
        self.last_error: BaseException | None = None
        self._stop_requested = False
        self._normal_exit = False
        self._external_stop = False
        self._in_hand: list[Envelope] = []
        self.stats: Any = None
        """What the actor counts at this address across restarts (a ComponentStats)."""
        self._swap_to: tuple[Actor, asyncio.Future[float]] | None = None
        self.probation: Probation | None = None
        """After a hot update: until when a failure rolls the address back (see _update)."""

    # --- starting ----------------------------------------------------------------

    async def boot(self) -> None:
        """Make a fresh actor instance, run ``on_start``, start the message loop."""
        self.state = ActorState.STARTING
        self._stop_requested = self._normal_exit = self._external_stop = False
        self.mailbox.reopen()
        try:
            actor = self.factory()
            if not isinstance(actor, Actor):
                raise TypeError(f"the factory for {self.address} returned {actor!r}, not an Actor")
            actor.ref = self.ref
            actor.system = self.system
            self._host(actor)
            await actor.on_start()
        except Exception as exc:
            self.state = ActorState.FAILED
            self.last_error = exc
            await self.stop_children()
            raise ActorStartError(f"actor {self.address} failed to start: {exc!r}") from exc
        self.state = ActorState.RUNNING
        self.task = asyncio.get_running_loop().create_task(
            self._run(actor), name=f"airssys-actor:{self.address}"
        )
        self.system._track(self.task)

    def _host(self, actor: Actor) -> None:
        """Make ``actor`` the one at this address, and its checks the broker's."""
        self.actor = actor
        self.gate, self.grants = actor._endpoint_checks()

    async def restart(self, delay: float) -> None:
        """Put a fresh instance in this cell after ``delay`` seconds."""
        self.state = ActorState.RESTARTING
        self.restarts += 1
        if delay > 0:
            await asyncio.sleep(delay)
        if self._external_stop:
            return
        await self.boot()

    # --- the loop ------------------------------------------------------------------

    async def _run(self, actor: Actor) -> None:
        error: BaseException | None = None
        try:
            try:
                error = await self._loop(actor)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # the loop itself broke: a crash, never a normal exit
                error = exc
                self._fail_in_hand(f"actor {self.address} crashed: {truncate(repr(exc), 300)}")
            actor = self.actor or actor  # a hot update may have swapped it
            if error is not None:
                self.last_error = error
                await _quietly("on_failure", self, actor.on_failure(error))
            self.state = ActorState.STOPPING
            await self.stop_children()
            await _quietly("on_stop", self, actor.on_stop())
        except asyncio.CancelledError:
            self._fail_in_hand(f"actor {self.address} was killed while handling the message")
            raise
        finally:
            self._in_hand = []
            if not self._external_stop:
                self._exited(error)

    def _fail_in_hand(self, reason: str) -> None:
        """Answer every ask in hand that has no answer yet (no asker is left hanging)."""
        for envelope in self._in_hand:
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(ActorDeadError(reason))

    async def _loop(self, actor: Actor) -> BaseException | None:
        max_batch: int = getattr(actor, "max_batch", 1)
        if max_batch > 1:
            return await self._batch_loop(actor, max_batch)
        mailbox = self.mailbox
        handler = actor.on_message
        is_async = inspect.iscoroutinefunction(handler)
        budget = _YIELD_EVERY
        in_hand: list[Envelope] = [Envelope(None)]  # one slot, reused: no list per message
        self._in_hand = in_hand
        items = mailbox._items
        while not self._stop_requested:
            if not items:  # the slot may keep an answered envelope: its reply is done
                budget = _YIELD_EVERY
                await mailbox.wait()
                continue
            envelope = items.popleft() if not mailbox._putters else mailbox.get_nowait()
            assert envelope is not None
            in_hand[0] = envelope
            actor.sender = envelope.sender
            reply = envelope.reply
            try:
                result = handler(envelope.message)
                if is_async:
                    result = await result
            except Exception as exc:
                if reply is not None and not reply.done():
                    reply.set_exception(exc)
                return exc
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise  # _run answers what is in hand
            except BaseException as exc:  # not an Exception, yet the asker gets an answer
                if reply is not None and not reply.done():
                    reply.set_exception(
                        ActorDeadError(f"actor {self.address} crashed: {exc!r:.300}")
                    )
                return exc
            mailbox.processed += 1
            if reply is not None and not reply.done():
                reply.set_result(result)
            budget -= 1
            if not budget:  # a busy actor still lets the rest of the loop run
                budget = _YIELD_EVERY
                await asyncio.sleep(0)
        return None

    async def _batch_loop(self, actor: Actor, max_batch: int) -> BaseException | None:
        """For actors with ``on_batch``: several queued messages per call, in order.

        ``on_batch(envelopes)`` returns ``(outcomes, failure)``: one ``(ok, value)``
        per handled envelope, in order, and the exception that failed the actor at
        the next envelope (or None). Envelopes after a failure go back to the
        front of the mailbox for the next incarnation; so do envelopes an actor
        chose not to handle this turn (fewer outcomes than envelopes, no failure).
        """
        mailbox = self.mailbox
        on_batch = actor.on_batch  # type: ignore[attr-defined]
        while not self._stop_requested:
            if self._swap_to is not None:  # a hot update, between two batches
                actor = await self._swap(actor)
                on_batch = actor.on_batch  # type: ignore[attr-defined]
                max_batch = getattr(actor, "max_batch", max_batch)
            batch = mailbox.take(max_batch)
            if not batch:
                await mailbox.wait()
                continue
            self._in_hand = batch
            try:
                outcomes, failure = await on_batch(batch)
            except Exception as exc:  # on_batch must not raise; if it does, nobody hangs
                self._fail_in_hand(
                    f"actor {self.address} crashed handling a batch: {truncate(repr(exc), 300)}"
                )
                self._in_hand = []
                return exc
            for envelope, (ok, value) in zip(batch, outcomes, strict=False):
                reply = envelope.reply
                if reply is not None and not reply.done():
                    if ok:
                        reply.set_result(value)
                    else:
                        reply.set_exception(value)
                elif not ok:
                    _failed_tell(
                        type(value).__name__,
                        actor=self.address,
                        sender=envelope.sender,
                        error=str(value),
                    )
            mailbox.processed += len(outcomes)
            if failure is not None:
                failed = batch[len(outcomes)]
                if failed.reply is not None and not failed.reply.done():
                    failed.reply.set_exception(failure)
                mailbox.requeue(batch[len(outcomes) + 1 :])
                self._in_hand = []
                error: BaseException = failure
                return error
            if len(outcomes) < len(batch):
                mailbox.requeue(batch[len(outcomes) :])
            self._in_hand = []
            await asyncio.sleep(0)
        return None

    # --- hot update (see _update) --------------------------------------------------------

    def swap(self, new: Actor) -> asyncio.Future[float]:
        """Hand the mailbox to ``new`` (already started) between two batches; the
        current actor finishes the batch in hand, then stops. Resolves once swapped,
        to the fence's length in milliseconds: from the end of the old actor's last
        batch to ``new`` owning the mailbox (the time the address handled nothing)."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if self._swap_to is not None:
            self._swap_to[1].cancel()
        self._swap_to = (new, done)
        self.mailbox.wake()
        return done

    async def _swap(self, old: Actor) -> Actor:
        assert self._swap_to is not None
        new, done = self._swap_to
        self._swap_to = None
        fenced = time.perf_counter()
        try:
            await new._take_over(old)  # the fence: old handles nothing meanwhile
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
            return old
        self._host(new)
        fence_ms = (time.perf_counter() - fenced) * 1e3
        await _quietly("on_stop", self, old.on_stop())
        if not done.done():
            done.set_result(fence_ms)
        return new

    def _cancel_swap(self, reason: str) -> None:
        if self._swap_to is not None:
            done = self._swap_to[1]
            self._swap_to = None
            if not done.done():
                done.set_exception(ActorDeadError(reason))

    def _exited(self, error: BaseException | None) -> None:
        """The actor ended by itself: tell whoever decides what happens next."""
        self._cancel_swap(f"actor {self.address} stopped before the update took over")
        probation = self.probation
        rolled_back = False
        if probation is not None:
            self.probation = None
            if error is not None and probation.active():
                probation.failed(error)  # the factory is the previous version's again
                rolled_back = True
        self.state = ActorState.FAILED if error is not None else ActorState.STOPPED
        parent = self.parent
        if rolled_back and (parent is None or not parent.supervises):
            # nobody restarts a top-level actor: the rollback does, at once
            task = asyncio.get_running_loop().create_task(
                self._boot_previous(error), name=f"airssys-rollback:{self.address}"
            )
            self.system._track(task)
            return
        if parent is not None and parent.supervises:
            try:
                parent.mailbox.put_nowait(Envelope(ChildExited(self, error)))
                return
            except Exception:
                pass  # the supervisor is going away itself
        if error is not None:
            _log.error("actor failed", actor=self.address, error=truncate(repr(error)))
            if parent is None:
                self.system._failed(self.address, error, self.supervises)
        self.finalize(error)

    async def _boot_previous(self, error: BaseException | None) -> None:
        try:
            await self.restart(0.0)
        except Exception as exc:
            _log.error("rollback failed", actor=self.address, error=truncate(repr(exc)))
            self.finalize(error)

    # --- stopping --------------------------------------------------------------------

    @property
    def supervises(self) -> bool:
        return self.actor is not None and self.actor._supervises

    @property
    def normal_exit(self) -> bool:
        return self._normal_exit

    def request_stop(self, *, normal: bool) -> None:
        self._stop_requested = True
        self._normal_exit = normal
        if self.state is ActorState.RUNNING:
            self.state = ActorState.STOPPING
        self.mailbox.wake()

    async def stop(self, *, kill: bool = False, for_restart: bool = False) -> None:
        """Stop from outside: finish the current message, stop children, run on_stop.

        Kills the task when it takes longer than the shutdown timeout, or at once
        with ``kill=True`` or a ``"brutal_kill"`` shutdown. ``for_restart`` keeps
        the address registered and the queued messages for the next instance.
        """
        shutdown = BRUTAL_KILL if kill else self.shutdown
        self._cancel_swap(f"actor {self.address} was stopped before the update took over")
        self._external_stop = True
        self.request_stop(normal=True)
        task = self.task
        if task is not None and not task.done():
            if shutdown == BRUTAL_KILL:
                task.cancel()
            else:
                timeout = None if shutdown is None else float(shutdown)
                done, _ = await asyncio.wait({task}, timeout=timeout)
                if not done:
                    _log.warning(
                        "actor did not stop in time; killing it",
                        actor=self.address,
                        timeout=timeout,
                    )
                    task.cancel()
            await asyncio.wait({task})
        await self.stop_children()  # if it was killed, its children are still there
        if for_restart:
            self.state = ActorState.RESTARTING
            self._external_stop = False  # the supervisor brings it back
        else:
            self.finalize(None)

    async def stop_children(self) -> None:
        """Stop the children in reverse start order."""
        for child in reversed(list(self.children.values())):
            await child.stop()

    def finalize(self, error: BaseException | None) -> None:
        """No more messages, ever: fail queued asks, leave the registry."""
        if error is None and self.state is not ActorState.FAILED:
            self.state = ActorState.STOPPED
        elif error is not None:
            self.state = ActorState.FAILED
        if error is not None:
            self.last_error = error
        self.mailbox.close(f"actor {self.address} stopped before handling the message")
        if self.parent is not None and self.parent.children.get(self.name) is self:
            del self.parent.children[self.name]
        self.system._forget(self)

    def __repr__(self) -> str:
        return f"<ActorCell {self.address} {self.state.value}>"
