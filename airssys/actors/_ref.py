"""ActorRef: the handle everyone holds; it survives restarts of the actor behind it."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING, Any, Final, final

from ..errors import ActorDeadError
from ..names import check_sender
from ._actor import ActorState
from ._mailbox import Envelope, MailboxStats

if TYPE_CHECKING:
    from ._cell import ActorCell

__all__ = ("DEFAULT_ASK_TIMEOUT", "ActorRef", "check_timeout")

DEFAULT_ASK_TIMEOUT: Final = 5.0


def check_timeout(timeout: object) -> None:
    """Refuse an ask timeout that is not None or a positive, finite number of seconds."""
    if timeout is None:
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < math.inf
    ):
        raise ValueError(
            f"ask timeout must be a positive number of seconds (or None to wait "
            f"forever), got {timeout!r}"
        )


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
        """Queue ``message``; waits for room when the mailbox strategy is ``wait``."""
        if sender is not None:
            check_sender(sender)
        mailbox = self._cell.mailbox
        if len(mailbox) + mailbox.reserved < mailbox.capacity:  # room: no waiting coroutine
            mailbox.put_nowait(Envelope(message, sender))
        else:
            await mailbox.put(Envelope(message, sender))

    def tell_nowait(self, message: Any, *, sender: str | None = None) -> bool:
        """Queue ``message`` now; a full mailbox drops it (returns False) or raises."""
        if sender is not None:
            check_sender(sender)
        return self._cell.mailbox.put_nowait(Envelope(message, sender))

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
        """
        if sender is not None:
            check_sender(sender)
        return await self._ask(message, timeout, sender)

    async def _ask(self, message: Any, timeout: float | None, sender: str | None) -> Any:
        """:meth:`ask` with its sender already checked (the broker checks it once)."""
        check_timeout(timeout)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        mailbox = self._cell.mailbox
        if len(mailbox) + mailbox.reserved < mailbox.capacity:  # room: no waiting coroutine
            mailbox.put_nowait(Envelope(message, sender, reply))
        else:
            await mailbox.put(Envelope(message, sender, reply))
        return await self._reply(reply, timeout)

    async def _reply(self, reply: asyncio.Future[Any], timeout: float | None) -> Any:
        if timeout is None:
            return await reply
        deadlines = self._cell.system._deadlines()
        deadlines.add(reply, timeout, self.address)
        try:
            return await reply
        finally:  # answered, failed or cancelled: the deadline has nothing left to guard
            deadlines.discard(reply, timeout)

    # --- for senders on other threads (a component's messaging imports) ---------------

    def _reserve(self) -> None:
        """Promise a mailbox slot now, from any thread (raises MailboxFull/ActorDeadError)."""
        self._cell.mailbox.reserve()

    def _put_reserved(
        self, message: Any, sender: str | None, reply: asyncio.Future[Any] | None = None
    ) -> None:
        """Fill the slot :meth:`_reserve` promised (event loop only)."""
        self._cell.mailbox.put_reserved(Envelope(message, sender, reply))

    async def _ask_reserved(self, message: Any, *, timeout: float, sender: str) -> Any:
        """Like :meth:`ask`, into a slot :meth:`_reserve` promised."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put_reserved(message, sender, reply)
        return await self._reply(reply, timeout)

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the actor (and its children) and wait until it has stopped.

        A supervised actor stopped this way is not restarted.
        """
        cell = self._cell
        parent = cell.parent
        if parent is not None and parent.supervises:
            # through the supervisor's mailbox, so it cannot race a restart in progress
            from ._supervisor import SupervisorRef

            with contextlib.suppress(KeyError, ActorDeadError):  # already gone: stopped
                await SupervisorRef(parent.ref)._stop_child(cell, kill=kill)
            return
        await cell.stop(kill=kill)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return f"<ActorRef {self.address} {self._cell.state.value}>"
