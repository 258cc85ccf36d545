"""airssys: an actor-hosted WebAssembly component runtime for Python.

import airssys

async with airssys.open_system() as system:
    await system.spawn_component("components/fixtures/echo.wat", name="echo")
    reply = await system.ask("/echo", airssys.codec.encode({"hi": 1}))
"""

from . import codec as codec
from . import errors as errors
from . import names as names
from ._logging import configure_logging as configure_logging
from ._version import __version__ as __version__
from .actors import Actor as Actor
from .actors import ActorRef as ActorRef
from .actors import ActorState as ActorState
from .actors import ActorSystem as ActorSystem
from .actors import Backpressure as Backpressure
from .actors import ChildSpec as ChildSpec
from .actors import ComponentActor as ComponentActor
from .actors import Restart as Restart
from .actors import Strategy as Strategy
from .actors import Supervisor as Supervisor
from .actors import SupervisorRef as SupervisorRef
from .actors import open_system as open_system
from .broker import DeadLetter as DeadLetter
from .broker import MessageBroker as MessageBroker
from .errors import AirssysError as AirssysError
from .manifest import ComponentManifest as ComponentManifest
from .manifest import load_manifest as load_manifest
from .runtime import Component as Component
from .runtime import ComponentInstance as ComponentInstance
from .runtime import Limits as Limits
from .runtime import Runtime as Runtime

__all__ = (
    "Actor",
    "ActorRef",
    "ActorState",
    "ActorSystem",
    "AirssysError",
    "Backpressure",
    "ChildSpec",
    "Component",
    "ComponentActor",
    "ComponentInstance",
    "ComponentManifest",
    "DeadLetter",
    "Limits",
    "MessageBroker",
    "Restart",
    "Runtime",
    "Strategy",
    "Supervisor",
    "SupervisorRef",
    "__version__",
    "codec",
    "configure_logging",
    "errors",
    "load_manifest",
    "names",
    "open_system",
)
