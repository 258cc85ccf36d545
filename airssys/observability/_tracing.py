"""OpenTelemetry tracing (the ``otel`` extra): a span per handled message.

``open_system(tracing=True)`` (the global tracer provider) or
``open_system(tracing=<a TracerProvider>)``. Then:

* every message a component handles is a span ``handle <address>`` (a callback:
  ``callback <address>``) with ``airssys.address``, ``airssys.component``,
  ``airssys.outcome`` (ok, error, trap) and ``airssys.fuel``; a failure sets the
  span's status to error;
* its parent is whatever span was current where the message was sent: an
  application's span around ``system.ask``, or the span of the component message
  during which a component called ``send``, ``publish`` or ``request``. A request's
  reply comes back through ``handle-callback`` as a child of the requesting span,
  so a request to another component and back is one trace;
* :func:`add_trace_ids` (a structlog processor) puts ``trace_id`` and ``span_id``
  on log lines written while a span is current; airssys's own log pipeline adds
  it while tracing is on.

Without ``tracing`` nothing here runs and ``opentelemetry`` is never imported.
How: each :class:`Envelope` carries the OpenTelemetry context current where it
was made (captured only while some system traces); a component's host calls hop
to the event loop inside a copy of the calling thread's context.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from .. import messages
from ..errors import TracingUnavailable as TracingUnavailable
from ..messages import Callback

if TYPE_CHECKING:
    from ..messages import Envelope

__all__ = ("MessageTracer", "add_trace_ids", "enable", "release")

_lock = threading.Lock()
_users = 0


def _otel() -> Any:
    try:
        from opentelemetry import context, trace
    except ImportError:
        raise TracingUnavailable(
            "tracing needs OpenTelemetry: install the otel extra "
            "(pip install 'airssys[otel]'), or open the system without tracing"
        ) from None
    return context, trace


class MessageTracer:
    """Starts and ends the span of each handled message (any thread)."""

    __slots__ = ("_attach", "_detach", "_error", "_set_span", "_tracer")

    def __init__(self, provider: Any = None) -> None:
        context, trace = _otel()
        from opentelemetry.trace import StatusCode

        from .._version import __version__

        provider = provider if provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer("airssys", __version__)
        self._attach = context.attach
        self._detach = context.detach
        self._set_span = trace.set_span_in_context
        self._error = StatusCode.ERROR

    def begin(self, envelope: Envelope, address: str, component: str) -> tuple[Any, object]:
        """The message's span, made current on this thread until :meth:`end`."""
        parent = envelope.trace
        verb = "callback" if isinstance(envelope.message, Callback) else "handle"
        span = self._tracer.start_span(
            f"{verb} {address}",
            context=parent,
            attributes={
                "airssys.address": address,
                "airssys.component": component,
                "airssys.sender": envelope.sender or "",
            },
        )
        return span, self._attach(self._set_span(span, parent))

    def end(self, span: Any, token: object, outcome: str, fuel: int) -> None:
        self._detach(token)
        span.set_attribute("airssys.outcome", outcome)
        span.set_attribute("airssys.fuel", fuel)
        if outcome != "ok":
            span.set_status(self._error, outcome)
        span.end()


def _capture() -> Any:
    from opentelemetry import context

    return context.get_current()


def enable() -> None:
    """A system starts tracing: envelopes capture the current context from now on."""
    global _users
    _otel()
    from .._logging import _extra_processors

    with _lock:
        _users += 1
        messages.capture_trace = _capture
        if add_trace_ids not in _extra_processors:
            _extra_processors.append(add_trace_ids)


def release() -> None:
    """A tracing system closed; the last one turns capturing off."""
    global _users
    from .._logging import _extra_processors

    with _lock:
        _users = max(0, _users - 1)
        if _users == 0:
            messages.capture_trace = None
            if add_trace_ids in _extra_processors:
                _extra_processors.remove(add_trace_ids)


def add_trace_ids(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` (hex) of the current span."""
    try:
        from opentelemetry import trace
    except ImportError:
        return event
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event.setdefault("span_id", format(span_context.span_id, "016x"))
    return event
