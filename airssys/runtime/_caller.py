"""The two sides of a host call, shared by the instance and the host imports.

* :class:`Host`: what an instance asks of the system around it (the broker side of
  its ``messaging`` imports); :class:`DetachedHost` serves an instance used on its own.
* :class:`Caller`: what a host import asks of the instance calling it
  (:class:`~._instance.ComponentInstance` is one).
* :class:`Instances`: a runtime's live instances by the address of their Store's
  context, which is how a host import finds its caller.

The host imports (:mod:`._host`, :mod:`._keyvalue`, :mod:`._services`,
:mod:`._determinism`) know the calling instance only as a :class:`Caller` found
through a function they are given, so they sit below the instance module rather
than importing it.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, Final, Generic, Protocol, TypeVar, runtime_checkable

import wasmtime

from ._hostcall import HostContext

__all__ = (
    "LOG_LEVELS",
    "Caller",
    "DetachedHost",
    "Host",
    "Instances",
    "context_address",
    "detached",
    "structlog_method",
)

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
_STRUCTLOG_METHOD: Final = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "error": "error",
}


def structlog_method(level: str) -> str:
    """The structlog method name for a guest log level."""
    return _STRUCTLOG_METHOD.get(level, "info")


@runtime_checkable
class Host(Protocol):
    """The broker side of a component's ``messaging`` imports.

    A host may also carry ``services`` (storage, HTTP and processes: a
    :class:`HostServices`); one without gets errors for them.
    """

    def self_address(self) -> str:
        """The address other actors use to reach this component."""
        ...

    def send(self, to: str, payload: bytes) -> None:
        """Deliver ``payload`` to ``to`` without waiting for an answer."""
        ...

    def publish(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` to every subscriber of ``topic``."""
        ...

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        """Start a request; return its correlation id. The reply arrives via handle-callback."""
        ...


def detached(what: str, address: str, purpose: str) -> str:
    """Why ``what`` is refused to the instance at ``address``, which runs outside an
    actor system (with no host services)."""
    return (
        f"{what} is unavailable: {address} runs outside an actor system "
        f"(spawn it with system.spawn_component to {purpose})"
    )


class DetachedHost:
    """The host of an instance that lives outside an actor system.

    It knows its own address; messaging calls fail with a message saying why. It
    has no ``services``: storage, HTTP and process calls are answered with an error
    saying the instance runs outside an actor system.
    """

    def __init__(self, address: str) -> None:
        self._address = address

    def self_address(self) -> str:
        return self._address

    def _refuse(self, what: str) -> None:
        raise RuntimeError(detached(what, self._address, "reach other actors"))

    def send(self, to: str, payload: bytes) -> None:
        self._refuse("messaging.send")

    def publish(self, topic: str, payload: bytes) -> None:
        self._refuse("messaging.publish")

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._refuse("messaging.request")
        return ""  # unreachable; keeps mypy satisfied about the return type


Attempt = Callable[["Caller", tuple[Any, ...]], Any]
"""What a host import runs for one call: ``attempt(caller, args)``."""


class Caller(Protocol):
    """The instance a host import was called from, as the import sees it."""

    host: Host
    """Its host; ``services`` on it (when present) reach storage, HTTP, processes."""
    address: str
    """Its own address."""

    def host_call(
        self, name: str, attempt: Attempt, args: tuple[Any, ...], *, always: bool = False
    ) -> Any:
        """``attempt(self, args)``, or what the instance's recorder answers in replay."""
        ...

    def count_host_call(self, interface: str, outcome: str) -> None:
        """Count one call of ``interface`` by outcome (ok, err, denied, trap)."""
        ...

    def host_failed(self, what: str, exc: BaseException) -> wasmtime.WasmtimeError:
        """Host function ``what`` cannot answer (it raised ``exc``): the error that
        traps the instance, which its death then names."""
        ...

    def guest_log(self, level: str, message: str) -> None:
        """A log line of the guest's."""
        ...

    def time_left(self) -> float:
        """Seconds left of the current message's deadline (host calls are bounded by it)."""
        ...

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the instance closes."""
        ...


Find = Callable[[wasmtime.StoreContext], Caller]
"""How a host import finds its caller: by the calling Store (raises WasmtimeError
when no instance owns it)."""


def context_address(store: wasmtime.StoreContext) -> int:
    """The address of ``store``'s context: what an instance is registered by."""
    if isinstance(store, HostContext):  # our trampoline's: the address is at hand
        return store.address
    return ctypes.cast(store._context(), ctypes.c_void_p).value or 0


C = TypeVar("C")


class Instances(Generic[C]):
    """Live instances by the address of their Store's context. Thread-safe."""

    __slots__ = ("_by_address", "_lock")

    def __init__(self) -> None:
        self._by_address: dict[int, C] = {}
        self._lock = threading.Lock()

    def add(self, address: int, instance: C) -> None:
        with self._lock:
            self._by_address[address] = instance

    def remove(self, address: int, instance: C) -> None:
        """Forget ``instance`` (only if ``address`` still names it)."""
        with self._lock:
            if self._by_address.get(address) is instance:
                del self._by_address[address]

    def of(self, store: wasmtime.StoreContext) -> C:
        """The instance that owns ``store`` (a WasmtimeError, trapping the call, when
        none does: only if a Store outlives its instance)."""
        instance = self._by_address.get(context_address(store))
        if instance is None:
            raise wasmtime.WasmtimeError("host call from a Store no airssys instance owns")
        return instance

    def all(self) -> list[C]:
        with self._lock:
            return list(self._by_address.values())

    def __len__(self) -> int:
        return len(self._by_address)
