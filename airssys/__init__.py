"""airssys: an actor-hosted WebAssembly component runtime for Python."""

from . import errors as errors
from .errors import AirssysError as AirssysError
from .runtime import Component as Component
from .runtime import ComponentInstance as ComponentInstance
from .runtime import Limits as Limits
from .runtime import Runtime as Runtime

__version__ = "0.1.0"

__all__ = (
    "AirssysError",
    "Component",
    "ComponentInstance",
    "Limits",
    "Runtime",
    "__version__",
    "errors",
)
