"""The system's Prometheus metrics, read from its own counters at scrape time.

A custom collector (prometheus-client's ``Collector`` protocol): the hot path
never touches prometheus-client. Actors count into plain ints (a component's
:class:`ComponentStats`, its mailbox, the broker's dead letters, the audit log),
and :meth:`SystemCollector.collect` turns them into metric families when
``/metrics`` is scraped. Labels are bounded: an address, an interface, an outcome
or a reason kind, never a payload or an error text.

Metrics (``airssys_`` prefix; counters end in ``_total``):

* ``airssys_messages_total{address,component,outcome}``: ok, error, trap
* ``airssys_handle_seconds{address,component}``: handle-message latency
  histogram (off with ``open_system(metrics=False)``)
* ``airssys_fuel_consumed_total{address,component}``
* ``airssys_host_calls_total{address,interface,outcome}``: ok, err, denied, trap
* ``airssys_capability_denials_total{address}``
* ``airssys_component_memory_limit_bytes{address}``
* ``airssys_restarts_total{address}``, ``airssys_mailbox_depth{address}``,
  ``airssys_mailbox_dropped_total{address}``, ``airssys_messages_processed_total{address}``
  (every actor)
* ``airssys_dead_letters_total{reason}``
* ``airssys_actors{state}``
* ``airssys_supervisor_healthy{address}`` (1 or 0) and ``airssys_healthy`` (the system)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from ._snapshot import Observable

__all__ = ("SystemCollector", "registry_for")

_STATES = ("starting", "running", "restarting", "stopping", "stopped", "failed")


class SystemCollector(Collector):
    """Reads one ActorSystem's counters; register it in any CollectorRegistry."""

    def __init__(self, system: Observable) -> None:
        self._system = system

    def collect(self) -> Iterable[Metric]:
        seen = self._system.observe()
        messages = CounterMetricFamily(
            "airssys_messages",
            "Messages a component handled, by outcome (ok, error, trap).",
            labels=["address", "component", "outcome"],
        )
        latency = HistogramMetricFamily(
            "airssys_handle_seconds",
            "Time a component took to handle one message.",
            labels=["address", "component"],
            unit="seconds",
        )
        fuel = CounterMetricFamily(
            "airssys_fuel_consumed",
            "Fuel a component consumed (all incarnations).",
            labels=["address", "component"],
        )
        host_calls = CounterMetricFamily(
            "airssys_host_calls",
            "Host import calls by interface and outcome (ok, err, denied, trap).",
            labels=["address", "interface", "outcome"],
        )
        denials = CounterMetricFamily(
            "airssys_capability_denials",
            "Capability checks a component failed.",
            labels=["address"],
        )
        memory = GaugeMetricFamily(
            "airssys_component_memory_limit_bytes",
            "A component's linear-memory cap.",
            labels=["address"],
        )
        restarts = CounterMetricFamily(
            "airssys_restarts", "Restarts of the actor at an address.", labels=["address"]
        )
        depth = GaugeMetricFamily(
            "airssys_mailbox_depth", "Messages queued for an actor.", labels=["address"]
        )
        dropped = CounterMetricFamily(
            "airssys_mailbox_dropped",
            "Messages a full mailbox dropped (drop backpressure).",
            labels=["address"],
        )
        processed = CounterMetricFamily(
            "airssys_messages_processed",
            "Messages an actor handled, every kind of actor.",
            labels=["address"],
        )
        supervisors = GaugeMetricFamily(
            "airssys_supervisor_healthy",
            "1 while a supervisor is not crash-looping, else 0.",
            labels=["address"],
        )
        states: Counter[str] = Counter()
        for actor in seen.actors:
            address = actor.address
            states[actor.state] += 1
            restarts.add_metric([address], actor.restarts)
            depth.add_metric([address], actor.queued)
            dropped.add_metric([address], actor.dropped)
            processed.add_metric([address], actor.processed)
            if actor.kind == "supervisor":
                supervisors.add_metric([address], 1 if actor.healthy else 0)
            elif actor.kind == "component":
                name = actor.component or ""
                messages.add_metric([address, name, "ok"], actor.calls - actor.errors)
                messages.add_metric([address, name, "error"], actor.errors)
                messages.add_metric([address, name, "trap"], actor.traps)
                fuel.add_metric([address, name], actor.fuel)
                denials.add_metric([address], actor.denials)
                if actor.memory_limit is not None:
                    memory.add_metric([address], actor.memory_limit)
                stats = seen.stats.get(address)
                if stats is not None:
                    histogram = stats.latency
                    if histogram is not None:
                        buckets = histogram.cumulative()
                        latency.add_metric(
                            [address, name], buckets=buckets, sum_value=histogram.sum
                        )
                    for (interface, outcome), count in dict(stats.host_calls).items():
                        host_calls.add_metric([address, interface, outcome], count)
        actors = GaugeMetricFamily(
            "airssys_actors", "Actors in the system by state.", labels=["state"]
        )
        for state in _STATES:
            actors.add_metric([state], states.get(state, 0))
        dead = CounterMetricFamily(
            "airssys_dead_letters",
            "Messages that could not be delivered, by kind of reason.",
            labels=["reason"],
        )
        for reason, count in sorted(seen.dead_letters.items()):
            dead.add_metric([reason], count)
        healthy = GaugeMetricFamily(
            "airssys_healthy", "1 while the system is healthy (system.health_report()), else 0."
        )
        healthy.add_metric([], 1 if seen.health.healthy else 0)
        yield from (
            messages,
            latency,
            fuel,
            host_calls,
            denials,
            memory,
            restarts,
            depth,
            dropped,
            processed,
            supervisors,
            actors,
            dead,
            healthy,
        )


def registry_for(system: Observable) -> CollectorRegistry:
    """A registry holding only ``system``'s metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SystemCollector(system))
    return registry
