"""Host imports: what a component's ``messaging`` and ``logging`` calls reach.

The runtime defines the imports once per linker; each call finds its instance
by the calling Store's context and forwards to that instance's host (a
:class:`~._caller.Host`: the broker implements it for actors; a
:class:`~._caller.DetachedHost` serves an instance used on its own).

The host services are defined here too: ``wasi:keyvalue`` (store, atomics,
batch) and ``airssys:component/storage`` (:mod:`._keyvalue`), and
``airssys:component/http`` and ``airssys:component/process`` (:mod:`._services`).
They reach ``host.services`` (``keyvalue``, ``http``, ``process``: a
HostServices), which the actor system gives each component, bound to its grants,
and are bounded by the instance's ``time_left()``; a host without ``services``
(a DetachedHost) answers every service call with an error saying why.

Host methods run on whichever thread is running the wasm call, so an
implementation must be thread-safe. An exception raised by a host method
reaches the guest as ``err(message)``; it never unwinds through wasm (wasmtime-py
parks such exceptions in a process-global slot, which is unsafe across threads).
Every string handed to a guest is valid UTF-8 of bounded length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NoReturn

import wasmtime
from wasmtime import component as wc

from .._logging import get_logger
from . import _hostcall as hc
from . import _hostvalues as hv
from ._caller import LOG_LEVELS, Find
from ._hosttypes import Described, EnumOf, HostTypes, signature
from ._keyvalue import define_keyvalue
from ._outcome import guest_text, host_function
from ._services import define_services
from ._world import LOGGING, MESSAGING

__all__ = ("define_imports",)

_log = get_logger("airssys.runtime.host")


# the types of the messaging and logging functions (wit/airssys.wit), as the host reads
# and writes them (the trampoline's parameter and result kinds)
_PARAM_TYPES: Final[dict[hc.ParamKind, Described]] = {
    hc.STRING: hv.STRING,
    hc.BYTES: hv.BYTES,
    hc.U32: hv.U32,
    hc.ENUM: EnumOf("level", LOG_LEVELS),
}
_RESULT_TYPES: Final[dict[hc.ResultKind, Described | None]] = {
    hc.NO_RESULT: None,
    hc.STRING_RESULT: hv.STRING,
    hc.UNIT_OR_ERR: hv.Result(None, hv.STRING),
    hc.STRING_OR_ERR: hv.Result(hv.STRING, hv.STRING),
}


def define_imports(linker: wc.Linker, instance_of: Find, *, trampoline: bool = True) -> HostTypes:
    """Define ``messaging``, ``logging`` and the services in ``linker``, dispatching
    by Store; returns the signature of every function defined (interface -> function ->
    :class:`~._hosttypes.Signature`), which loading checks a component's imports against.

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

    def trap(store: wasmtime.StoreContext, what: str, exc: BaseException) -> NoReturn:
        raise instance_of(store).host_failed(what, exc) from None

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

    def unit_or_err(result: wc.Variant) -> str | None:
        # result<_, string> as the trampoline writes it: None is ok, a str is err
        return None if result.tag == "ok" else str(result.payload)

    send = host_function(
        instance_of, "messaging.send", lambda c, to, p: c.host.send(to, p), then=unit_or_err
    )
    publish = host_function(
        instance_of, "messaging.publish", lambda c, t, p: c.host.publish(t, p), then=unit_or_err
    )
    request = host_function(
        instance_of,
        "messaging.request",
        lambda c, to, p, ms: guest_text(str(c.host.request(to, p, ms))),
    )
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

    types: HostTypes = {}
    with linker.root() as root:
        for interface, funcs in ((MESSAGING, messaging_funcs), (LOGGING, logging_funcs)):
            with root.add_instance(interface) as instance:
                for name, fn, params, result in funcs:
                    if trampoline:
                        hc.add_func(instance, name, fn, params, result)
                    else:
                        instance.add_func(name, fn)
            types[interface] = {
                name: signature([_PARAM_TYPES[p] for p in params], _RESULT_TYPES[result])
                for name, _, params, result in funcs
            }
        # the services: always through the trampoline (wasmtime-py's own conversions
        # cannot lower some of their results, see _hostvalues)
        types.update(define_keyvalue(root, instance_of))
        types.update(define_services(root, instance_of))
    return types
