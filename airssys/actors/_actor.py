"""The Actor base class and the lifecycle states every actor goes through."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..broker import PayloadGate
    from ..security import CompiledGrants
    from ._cell import ActorCell
    from ._ref import ActorRef
    from ._system import ActorSystem

__all__ = ("Actor", "ActorState")


class ActorState(StrEnum):
    """Where an actor is in its life. Visible as ``ref.state``."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Actor:
    """Subclass and override the hooks you need.

    * ``on_start()`` runs before the first message; ``spawn`` returns after it, and
      an exception here reaches the caller of ``spawn`` as ``ActorStartError``.
    * ``on_message(message)`` handles one message at a time; it may be a plain or an
      ``async`` method. Its return value answers an ``ask``. An exception fails the
      actor: the asker gets the exception, and the supervisor decides what next.
    * ``on_failure(error)`` runs after ``on_message`` raised, before ``on_stop``.
    * ``on_stop()`` runs whenever the actor stops (not after a brutal kill).

    While handling a message, ``self.sender`` is the sender's address, if given.
    """

    ref: ActorRef
    system: ActorSystem
    sender: str | None = None
    _supervises: ClassVar[bool] = False
    """True for a Supervisor: its children's stops and restarts go through it."""

    async def on_start(self) -> None:
        """Called before the first message."""

    def on_message(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise TypeError(
            f"{type(self).__name__} received {message!r} but defines no on_message handler"
        )

    async def on_failure(self, error: BaseException) -> None:
        """Called after ``on_message`` raised ``error``, before ``on_stop``."""

    async def on_stop(self) -> None:
        """Called when the actor stops, whatever the reason (except a brutal kill)."""

    async def _stop_child(self, cell: ActorCell, *, kill: bool) -> None:
        """Stop the child in ``cell`` (a supervisor does it through its mailbox, so
        that a stop cannot race a restart)."""
        await cell.stop(kill=kill)

    def _respec(self, cell: ActorCell, factory: Callable[[], Actor]) -> None:
        """The child in ``cell`` is started by ``factory`` from now on (a hot update);
        a supervisor keeps it in the child's spec for its restarts."""

    async def _take_over(self, old: Actor) -> None:
        """A hot update's switch, between two batches of ``old`` (which handles
        nothing until this returns): take over what ``old`` holds. Raising aborts
        the switch and ``old`` goes on serving."""

    def _endpoint_checks(self) -> tuple[PayloadGate | None, CompiledGrants | None]:
        """What the broker checks before a message or a subscription reaches this
        actor: a payload gate and compiled grants (a component's); none here."""
        return None, None

    def stop(self) -> None:
        """Stop this actor after the current message (a normal exit)."""
        self.ref._cell.request_stop(normal=True)
