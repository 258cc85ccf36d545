"""What a host call answers the guest, and how it counts: one rule for every import.

:func:`answer` runs a host function for its caller and turns what happened into the
call's outcome and the guest's ``result``; the function

* returns ``value``: **ok**, the guest gets ``ok(value)``;
* raises :class:`Refused` (its own answer): **err**, ``err`` with the message as it is;
* raises :class:`~airssys.errors.CapabilityDenied`: **denied**, ``err`` with the
  denial as it is (``capability denied: <kind> <resource>; granted: ...``);
* raises another ``Exception``: **err**, ``err("<what> failed: <exc>")``;
* raises ``wasmtime.WasmtimeError``: **trap**, the instance traps;
* raises anything else (a ``BaseException``): **trap**, the instance traps and its
  death names the host function.

Each call is counted by interface and outcome on the caller (the actor's host-call
stats: ``airssys_host_calls_total``). The ``err`` value is written in the import's
WIT error type: a ``string`` (messaging, HTTP, processes: :func:`text_error`), or
wasi:keyvalue's ``error`` variant (:func:`keyvalue_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import wasmtime
from wasmtime import component as wc

from .._logging import truncate
from ..errors import CapabilityDenied, QuotaExceeded
from ._caller import Caller, Find, detached

__all__ = (
    "OUTCOMES",
    "Outcome",
    "Refused",
    "answer",
    "guest_text",
    "host_function",
    "keyvalue_error",
    "other",
    "outcome_of",
    "services_of",
    "text_error",
)

Outcome = Literal["ok", "err", "denied", "trap"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "err", "denied", "trap")
"""The outcomes a host call is counted by."""
GUEST_TEXT_MAX: Final = 4096
"""Characters of an error message handed to a guest."""


class Refused(Exception):
    """A host function's own ``err`` answer, which the guest gets as it is (a service
    missing, a deadline passed, a result too large for the guest)."""


def services_of(caller: Caller, what: str, purpose: str) -> Any:
    """The caller's host services (storage, HTTP, processes; see :mod:`._host`), or
    :class:`Refused` for an instance outside an actor system, which has none."""
    services = getattr(caller.host, "services", None)
    if services is None:
        raise Refused(detached(what, caller.address, purpose))
    return services


def outcome_of(exc: BaseException) -> Outcome:
    """The outcome of a host call that raised ``exc``."""
    if isinstance(exc, CapabilityDenied):
        return "denied"
    if isinstance(exc, Exception) and not isinstance(exc, wasmtime.WasmtimeError):
        return "err"
    return "trap"


def guest_text(text: str) -> str:
    """Text the host hands to a guest: valid UTF-8 (lowering a lone surrogate aborts
    the process inside wasmtime) and of bounded length."""
    return truncate(text, GUEST_TEXT_MAX).encode("utf-8", "replace").decode("utf-8")


def text_error(what: str, exc: Exception) -> str:
    """The ``string`` error of host function ``what`` that raised ``exc``."""
    if isinstance(exc, CapabilityDenied | Refused):  # "capability denied: <kind> ..."
        return guest_text(str(exc))
    return guest_text(f"{what} failed: {exc}")


def other(message: str) -> wc.Variant:
    """wasi:keyvalue's ``other(message)``."""
    return wc.Variant("other", guest_text(message))


def keyvalue_error(what: str, exc: Exception) -> wc.Variant:
    """wasi:keyvalue's ``error`` for a storage call that raised ``exc``: a bucket the
    grants do not name is ``access-denied``; everything else ``other(message)``."""
    if isinstance(exc, CapabilityDenied):
        return wc.Variant("access-denied")
    if isinstance(exc, Refused | QuotaExceeded | ValueError):  # InvalidName, InvalidKey...
        return other(str(exc))
    return other(f"storage failed: {exc}")


ErrorValue = Callable[[str, Exception], Any]
"""``(what, exc) -> the WIT error value``: :func:`text_error`, :func:`keyvalue_error`."""


def answer(
    caller: Caller,
    what: str,
    op: Callable[..., Any],
    args: tuple[Any, ...],
    error: ErrorValue = text_error,
) -> wc.Variant:
    """``op(caller, *args)`` as host function ``what`` (``interface.function``) answers
    it: ``Variant("ok", value)`` or ``Variant("err", error(what, exc))``, counted by
    outcome; a trap is raised (see the module docstring)."""
    interface = what.split(".", 1)[0]
    try:
        value = op(caller, *args)
    except wasmtime.WasmtimeError:
        caller.count_host_call(interface, "trap")
        raise
    except Exception as exc:
        caller.count_host_call(interface, outcome_of(exc))  # denied or err
        return wc.Variant("err", error(what, exc))
    except BaseException as exc:
        raise caller.host_failed(what, exc) from None  # counted as a trap
    caller.count_host_call(interface, "ok")
    return wc.Variant("ok", value)


def host_function(
    instance_of: Find,
    what: str,
    op: Callable[..., Any],
    *,
    error: ErrorValue = text_error,
    then: Callable[[wc.Variant], Any] | None = None,
    always: bool = False,
) -> Callable[..., Any]:
    """The host function ``fn(store, *args)`` of import ``what``: it finds its caller
    by the Store (``instance_of``) and returns :func:`answer` (passed through
    ``then``, when given, to make the import's result). A durable caller records
    that result, or answers it from its journal in replay (``always``: run it in
    replay too; see :class:`~._recorder.Recorder`)."""

    def call(store: wasmtime.StoreContext, *args: Any) -> Any:
        return instance_of(store).host_call(what, attempt, args, always=always)

    def attempt(caller: Caller, args: tuple[Any, ...]) -> Any:
        result = answer(caller, what, op, args, error)
        return result if then is None else then(result)

    call.__name__ = what
    return call
