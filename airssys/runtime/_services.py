"""``airssys:component/http`` and ``airssys:component/process``: the host functions.

Each call finds its instance by the calling Store and the service through the
instance's host (``host.services.http`` / ``.process``, which the actor system gives
every component, bound to its grants). The grant is checked first, before anything
else happens (a denied host never receives a connection, a denied executable is
never started), and a denial reaches the guest as ``err("capability denied:
<kind> <what>; granted: <the grants>")``, audited by the checks.

Every call is bounded by the message's deadline: the timeout used is the smaller of
the one asked for (``timeout-ms``; 0 asks for none) and the instance's time left, so
a host call cannot hold a component's thread past its deadline. A host without
``services`` (an instance outside an actor system) answers ``err`` saying why.

Byte lists cross as ``list<u8>``, which wasmtime lowers one 32-byte value per byte:
a response body or process output larger than :data:`BODY_MAX` is refused with an
error naming the size (the same ceiling as a message without the bulk lane).
"""

from __future__ import annotations

import math
from typing import Any, Final

from wasmtime import component as wc

from . import _hostvalues as hv
from . import _world
from ._caller import Caller, Find
from ._fastcall import LIST_PAYLOAD_MAX
from ._hosttypes import HostTypes, signature
from ._outcome import Refused, host_function, services_of

__all__ = ("BODY_MAX", "HTTP", "PROCESS", "define_services")

HTTP: Final = _world.HTTP
PROCESS: Final = _world.PROCESS
BODY_MAX: Final = LIST_PAYLOAD_MAX
"""The largest response body or process output (each of stdout, stderr) handed to a
component as ``list<u8>``."""

_PURPOSE: Final = "use host services"

HEADERS: Final = hv.List(hv.Tuple(hv.STRING, hv.STRING))
RESPONSE: Final = hv.Record(
    "response", ("status", hv.U16), ("headers", HEADERS), ("body", hv.BYTES)
)
PROCESS_RESULT: Final = hv.Record(
    "process-result",
    ("exit-code", hv.S32),
    ("stdout", hv.BYTES),
    ("stderr", hv.BYTES),
    ("truncated", hv.BOOL),
)


def _timeout(instance: Caller, timeout_ms: int) -> float:
    """The smaller of the asked timeout (0: none) and the time left in the message."""
    asked = timeout_ms / 1000.0 if timeout_ms else math.inf
    return max(0.0, min(asked, instance.time_left()))


def _too_big(what: str, size: int) -> str:
    return (
        f"{what} of {size} bytes is larger than the {BODY_MAX} bytes a component can "
        "take as list<u8>"
    )


# (parameter shapes, result shape) of http.fetch and process.run (wit/airssys.wit)
FETCH: Final = (
    (hv.STRING, hv.STRING, HEADERS, hv.BYTES, hv.U32),
    hv.Result(RESPONSE, hv.STRING),
)
RUN: Final = (
    (hv.STRING, hv.List(hv.STRING), hv.BYTES, hv.U32),
    hv.Result(PROCESS_RESULT, hv.STRING),
)


def define_services(root: wc.LinkerInstance, instance_of: Find) -> HostTypes:
    """Define ``http.fetch`` and ``process.run`` in ``root``; returns their signatures."""

    def fetch(
        instance: Caller,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout_ms: int,
    ) -> tuple[Any, ...]:
        services = services_of(instance, "http.fetch", _PURPOSE)
        response = services.http.fetch(method, url, headers, body, _timeout(instance, timeout_ms))
        if len(response.body) > BODY_MAX:
            raise Refused(
                f"{method} {url:.200}: " + _too_big("the response body", len(response.body))
            )
        return (response.status, list(response.headers), response.body)

    def run(
        instance: Caller,
        command: str,
        args: list[str],
        stdin: bytes,
        timeout_ms: int,
    ) -> tuple[Any, ...]:
        services = services_of(instance, "process.run", _PURPOSE)
        done = services.process.run(command, args, stdin, _timeout(instance, timeout_ms))
        for name in ("stdout", "stderr"):
            size = len(getattr(done, name))
            if size > BODY_MAX:
                raise Refused(f"{command:.200}: " + _too_big(f"its {name}", size))
        return (done.exit_code, done.stdout, done.stderr, done.truncated)

    with root.add_instance(HTTP) as instance:
        fetch_fn = host_function(instance_of, "http.fetch", fetch)
        hv.add_typed_func(instance, "fetch", fetch_fn, *FETCH)
    with root.add_instance(PROCESS) as instance:
        run_fn = host_function(instance_of, "process.run", run)
        hv.add_typed_func(instance, "run", run_fn, *RUN)
    return {HTTP: {"fetch": signature(*FETCH)}, PROCESS: {"run": signature(*RUN)}}
