"""ActorRef: the handle everyone holds; it survives restarts of the actor behind it."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, final

from ..errors import ActorDeadError
from ..messages import DEFAULT_ASK_TIMEOUT
from ._actor import ActorState

if TYPE_CHECKING:
    from ..broker import MailboxStats
    from ._cell import ActorCell

__all__ = ("ActorRef",)


@final
class ActorRef:
    """Send to an actor: ``tell`` (fire and forget), ``tell_nowait``, ``ask``."""

    __slots__ = ("_cell", "address", "name")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self.address: str = cell.address
        self.name: str = cell.name

    @property
    def state(self) -> ActorState:
        return self._cell.state

    @property
    def is_alive(self) -> bool:
        """True until the actor has stopped for good (a restart does not count)."""
        return not self._cell.mailbox.closed

    @property
    def mailbox(self) -> MailboxStats:
        return self._cell.mailbox.stats

    @property
    def restarts(self) -> int:
        return self._cell.restarts

    @property
    def last_error(self) -> BaseException | None:
        return self._cell.last_error

    async def tell(self, message: Any, *, sender: str | None = None) -> None:
        """Queue ``message``; waits for room when the mailbox strategy is ``wait``.
        The same checks and dead letters as ``system.send`` (the broker's)."""
        cell = self._cell
        await cell.system.broker.tell(cell, message, sender)

    def tell_nowait(self, message: Any, *, sender: str | None = None) -> bool:
        """Queue ``message`` now; a full mailbox drops it (returns False) or raises."""
        cell = self._cell
        return cell.system.broker.tell_nowait(cell, message, sender)

    async def ask(
        self,
        message: Any,
        *,
        timeout: float | None = DEFAULT_ASK_TIMEOUT,
        sender: str | None = None,
    ) -> Any:
        """Send ``message`` and wait for the reply (``on_message``'s return value).

        Raises ``AskTimeout`` after ``timeout`` seconds (None: wait forever),
        ``ActorDeadError`` when the actor is or becomes stopped first, and the
        actor's own exception when handling the message failed. A timeout that is
        not a positive number is refused (``ValueError``) before anything is sent.
        The same checks and dead letters as ``system.ask`` (the broker's).
        """
        cell = self._cell
        return await cell.system.broker.ask_endpoint(cell, message, timeout, sender)

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the actor (and its children) and wait until it has stopped.

        A supervised actor stopped this way is not restarted.
        """
        cell = self._cell
        parent = cell.parent
        if parent is not None and parent.actor is not None:
            # a supervisor stops it through its mailbox: no race with a restart
            with contextlib.suppress(KeyError, ActorDeadError):  # already gone: stopped
                await parent.actor._stop_child(cell, kill=kill)
            return
        await cell.stop(kill=kill)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return f"<ActorRef {self.address} {self._cell.state.value}>"
