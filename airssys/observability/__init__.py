"""Seeing what runs: snapshots, health, Prometheus metrics and tracing.

* ``system.snapshot()``: every actor as an :class:`ActorSnapshot` (tree order);
* ``system.health_report()``: :class:`Health` (crash-looping or escalated supervisors);
* ``system.metrics``: a prometheus-client ``CollectorRegistry`` with the system's
  metrics, read from its counters at scrape time (mount it in your own web app,
  or let ``airssys serve`` expose it on ``/metrics``);
* tracing with OpenTelemetry (the ``otel`` extra): ``open_system(tracing=True)``.
"""

from ._metrics import SystemCollector as SystemCollector
from ._metrics import registry_for as registry_for
from ._snapshot import ActorSnapshot as ActorSnapshot
from ._snapshot import Health as Health
from ._snapshot import Observable as Observable
from ._snapshot import Observation as Observation
from ._stats import LATENCY_BUCKETS as LATENCY_BUCKETS
from ._stats import ComponentStats as ComponentStats
from ._tracing import MessageTracer as MessageTracer
from ._tracing import TracingUnavailable as TracingUnavailable
from ._tracing import add_trace_ids as add_trace_ids
from ._tracing import enable as enable_tracing
from ._tracing import release as release_tracing

__all__ = (
    "LATENCY_BUCKETS",
    "ActorSnapshot",
    "ComponentStats",
    "Health",
    "MessageTracer",
    "Observable",
    "Observation",
    "SystemCollector",
    "TracingUnavailable",
    "add_trace_ids",
    "enable_tracing",
    "registry_for",
    "release_tracing",
)
