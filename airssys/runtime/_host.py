"""Host imports: what a component's ``messaging`` and ``logging`` calls reach.

The runtime defines the imports once per linker; each call finds its instance
by the calling Store's context and forwards to that instance's :class:`Host`.
The broker implements ``Host`` for actors; :class:`DetachedHost` serves an
instance used on its own.

The host services are defined here too: ``wasi:keyvalue`` (store, atomics,
batch) and ``airssys:component/storage`` (:mod:`._keyvalue`), and
``airssys:component/http`` and ``airssys:component/process`` (:mod:`._services`).
They reach ``host.services`` (``keyvalue``, ``http``, ``process`` and
``time_left()``, which bounds every call), which the actor system gives each
component, bound to its grants; a host without ``services`` (a DetachedHost)
answers every service call with an error saying why.

Host methods run on whichever thread is running the wasm call, so an
implementation must be thread-safe. An exception raised by a host method
reaches the guest as ``err(message)``; it never unwinds through wasm (wasmtime-py
parks such exceptions in a process-global slot, which is unsafe across threads).
Every string handed to a guest is valid UTF-8 of bounded length.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, runtime_checkable

import wasmtime
from wasmtime import component as wc

from .._logging import get_logger, truncate
from ..errors import CapabilityDenied
from . import _hostcall as hc
from ._keyvalue import define_keyvalue
from ._services import define_services
from ._world import LOGGING, MESSAGING

if TYPE_CHECKING:
    from ._instance import ComponentInstance

__all__ = ("LOG_LEVELS", "DetachedHost", "Host", "define_imports")

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
_STRUCTLOG_METHOD = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "error": "error",
}
_log = get_logger("airssys.runtime.host")
_GUEST_ERROR_MAX: Final = 4096  # characters of an error string handed to a guest


@runtime_checkable
class Host(Protocol):
    """The broker side of a component's ``messaging`` imports.

    A host may also carry ``services`` (storage, HTTP, processes and the message's
    ``time_left()``; see the module docstring); one without gets errors for them.
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
        raise RuntimeError(
            f"{what} is unavailable: {self._address} runs outside an actor system "
            "(spawn it with system.spawn_component to reach other actors)"
        )

    def send(self, to: str, payload: bytes) -> None:
        self._refuse("messaging.send")

    def publish(self, topic: str, payload: bytes) -> None:
        self._refuse("messaging.publish")

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._refuse("messaging.request")
        return ""  # unreachable; keeps mypy satisfied about the return type


Resolve = Callable[[int], "ComponentInstance | None"]


def _context_address(store: wasmtime.StoreContext) -> int:
    if isinstance(store, hc.HostContext):  # our trampoline's: the address is at hand
        return store.address
    return ctypes.cast(store._context(), ctypes.c_void_p).value or 0


def _guest_text(text: str) -> str:
    """Text the host hands to a guest: valid UTF-8 (lowering a lone surrogate aborts
    the process inside wasmtime) and of bounded length."""
    return truncate(text, _GUEST_ERROR_MAX).encode("utf-8", "replace").decode("utf-8")


def define_imports(linker: wc.Linker, resolve: Resolve, *, trampoline: bool = True) -> None:
    """Define ``messaging``, ``logging`` and the services in ``linker``, dispatching
    by Store.

    The functions are registered through airssys's own trampoline
    (:mod:`._hostcall`), which reads the arguments straight out of wasmtime's value
    array and writes the result straight back. ``trampoline=False`` registers the
    same messaging and logging functions through wasmtime-py's ``add_func`` instead
    (the reference the tests compare against); the services always take the
    trampoline (:mod:`._hostvalues`: wasmtime-py's own conversions cannot lower some
    of their results).

    No exception ever leaves these functions into wasmtime-py: it would park it in
    its process-wide "last exception" slot, where a trap in an unrelated instance
    on any thread would later pick it up. A failing host method becomes
    ``err(reason)`` for the guest; a host function that cannot answer at all
    records the exception on its own instance and traps that instance with a
    ``WasmtimeError`` (which both registration paths hand to wasmtime as the
    call's error, without the slot).
    """

    def instance_of(store: wasmtime.StoreContext) -> ComponentInstance:
        instance = resolve(_context_address(store))
        if instance is None:  # only if a Store outlives its instance
            raise wasmtime.WasmtimeError("host call from a Store no airssys instance owns")
        return instance

    def trap(store: wasmtime.StoreContext, what: str, exc: BaseException) -> NoReturn:
        instance = resolve(_context_address(store))
        if instance is None:
            raise wasmtime.WasmtimeError(f"host function {what} failed: {exc!r:.300}") from None
        trap_instance(instance, what, exc)

    def trap_instance(instance: ComponentInstance, what: str, exc: BaseException) -> NoReturn:
        instance._host_failure = (what, exc)
        instance.count_host_call(what.split(".", 1)[0], "trap")
        raise wasmtime.WasmtimeError(f"host function {what} failed: {exc!r:.300}") from None

    def guarded(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
        # result<_, string>: None is ok, a str is err
        interface = what.split(".", 1)[0]

        def call(store: wasmtime.StoreContext, *args: Any) -> str | None:
            answer: str | None = instance_of(store).host_call(what, attempt, args)
            return answer

        def attempt(instance: ComponentInstance, args: tuple[Any, ...]) -> str | None:
            try:
                fn(instance.host, *args)
            except wasmtime.WasmtimeError:
                raise
            except CapabilityDenied as exc:  # "capability denied: <kind> <resource>; ..."
                instance.count_host_call(interface, "denied")
                return _guest_text(str(exc))
            except Exception as exc:
                instance.count_host_call(interface, "err")
                return _guest_text(f"{what} failed: {exc}")
            except BaseException as exc:
                trap_instance(instance, what, exc)
            instance.count_host_call(interface, "ok")
            return None

        return call

    def request(
        store: wasmtime.StoreContext, to: str, payload: bytes, timeout_ms: int
    ) -> wc.Variant:
        answer: wc.Variant = instance_of(store).host_call(
            "messaging.request", start_request, (to, payload, timeout_ms)
        )
        return answer

    def start_request(instance: ComponentInstance, args: tuple[Any, ...]) -> wc.Variant:
        to, payload, timeout_ms = args
        try:
            cid = instance.host.request(to, payload, timeout_ms)
        except wasmtime.WasmtimeError:
            raise
        except CapabilityDenied as exc:
            instance.count_host_call("messaging", "denied")
            return wc.Variant("err", _guest_text(str(exc)))
        except Exception as exc:
            instance.count_host_call("messaging", "err")
            return wc.Variant("err", _guest_text(f"messaging.request failed: {exc}"))
        except BaseException as exc:
            trap_instance(instance, "messaging.request", exc)
        instance.count_host_call("messaging", "ok")
        return wc.Variant("ok", _guest_text(str(cid)))

    def self_address(store: wasmtime.StoreContext) -> str:
        try:
            return instance_of(store).address
        except wasmtime.WasmtimeError:
            raise
        except BaseException as exc:
            trap(store, "messaging.self-address", exc)

    def log(store: wasmtime.StoreContext, level: str, message: str) -> None:
        try:
            instance_of(store).guest_log(level, message)
        except Exception:  # a logging failure must never fail the guest
            _log.exception("guest log failed")
        except BaseException as exc:
            trap(store, "logging.log", exc)

    send = guarded(lambda h, to, p: h.send(to, p), "messaging.send")
    publish = guarded(lambda h, t, p: h.publish(t, p), "messaging.publish")
    # name, function, parameter shapes, result shape (wit/airssys.wit)
    messaging_funcs: list[tuple[str, Callable[..., Any], tuple[hc.ParamKind, ...], hc.ResultKind]]
    messaging_funcs = [
        ("send", send, (hc.STRING, hc.BYTES), hc.UNIT_OR_ERR),
        ("publish", publish, (hc.STRING, hc.BYTES), hc.UNIT_OR_ERR),
        ("request", request, (hc.STRING, hc.BYTES, hc.U32), hc.STRING_OR_ERR),
        ("self-address", self_address, (), hc.STRING_RESULT),
    ]
    logging_funcs: list[tuple[str, Callable[..., Any], tuple[hc.ParamKind, ...], hc.ResultKind]]
    logging_funcs = [("log", log, (hc.ENUM, hc.STRING), hc.NO_RESULT)]

    with linker.root() as root:
        for interface, funcs in ((MESSAGING, messaging_funcs), (LOGGING, logging_funcs)):
            with root.add_instance(interface) as instance:
                for name, fn, params, result in funcs:
                    if trampoline:
                        hc.add_func(instance, name, fn, params, result)
                    else:
                        instance.add_func(name, fn)
        # the services: always through the trampoline (wasmtime-py's own conversions
        # cannot lower some of their results, see _hostvalues)
        define_keyvalue(root, instance_of)
        define_services(root, instance_of, _guest_text)


def structlog_method(level: str) -> str:
    """The structlog method name for a guest log level."""
    return _STRUCTLOG_METHOD.get(level, "info")
