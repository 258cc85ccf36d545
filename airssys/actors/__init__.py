"""Actors, mailboxes and OTP-style supervisors on asyncio."""

from ..broker import Backpressure as Backpressure
from ..broker import MailboxStats as MailboxStats
from ..messages import DEFAULT_ASK_TIMEOUT as DEFAULT_ASK_TIMEOUT
from ..messages import HEALTH as HEALTH
from ._actor import Actor as Actor
from ._actor import ActorState as ActorState
from ._cell import BRUTAL_KILL as BRUTAL_KILL
from ._component import INLINE_MAX_MS as INLINE_MAX_MS
from ._component import PROBATION as PROBATION
from ._component import STALL_BUDGET_MS as STALL_BUDGET_MS
from ._component import ComponentActor as ComponentActor
from ._component import ComponentHealth as ComponentHealth
from ._component import Execution as Execution
from ._ref import ActorRef as ActorRef
from ._supervisor import ChildInfo as ChildInfo
from ._supervisor import ChildSpec as ChildSpec
from ._supervisor import Restart as Restart
from ._supervisor import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor
from ._supervisor import SupervisorRef as SupervisorRef
from ._system import ActorSystem as ActorSystem
from ._system import open_system as open_system
from ._update import UpdateFailed as UpdateFailed
from ._update import UpdateReport as UpdateReport
from ._update import VersionInfo as VersionInfo

__all__ = (
    "BRUTAL_KILL",
    "DEFAULT_ASK_TIMEOUT",
    "HEALTH",
    "INLINE_MAX_MS",
    "PROBATION",
    "STALL_BUDGET_MS",
    "Actor",
    "ActorRef",
    "ActorState",
    "ActorSystem",
    "Backpressure",
    "ChildInfo",
    "ChildSpec",
    "ComponentActor",
    "ComponentHealth",
    "Execution",
    "MailboxStats",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorRef",
    "UpdateFailed",
    "UpdateReport",
    "VersionInfo",
    "open_system",
)
