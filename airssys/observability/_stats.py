"""Counters a component actor keeps for itself: plain ints, read at scrape time.

Nothing here imports prometheus-client: the hot path only adds to ints and one
list slot (the latency histogram), and :mod:`._metrics` turns them into metric
families when someone asks. One actor's counters are written by one thread at a
time (the one running its batch) and read by the scraper on the event loop;
reads may be a message behind, never torn.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._tracing import MessageTracer

__all__ = ("LATENCY_BUCKETS", "ComponentStats", "LatencyHistogram")

LATENCY_BUCKETS: Final = (
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of the handle-latency buckets: a small component answers
in tens of microseconds, a deadline is at most seconds."""


class LatencyHistogram:
    """Counts per bucket (not cumulative; the last slot is +Inf) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: (upper bound, count of observations <= it), +Inf last."""
        total, out = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), list(self.counts), strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


class ComponentStats:
    """One address's counters across every incarnation (the cell keeps it)."""

    __slots__ = ("errors", "fuel_past", "handled", "host_calls", "latency", "tracer", "traps")

    def __init__(self, *, latency: bool = True, tracer: MessageTracer | None = None) -> None:
        self.handled = 0
        """Messages the component answered (ok or error), all incarnations."""
        self.errors = 0
        """Of those, answered with an error (the handler's err, a refused payload)."""
        self.traps = 0
        """Messages that killed their instance (trap, fuel, deadline, memory)."""
        self.fuel_past = 0
        """Fuel used by incarnations that have ended."""
        self.latency: LatencyHistogram | None = LatencyHistogram() if latency else None
        self.host_calls: dict[tuple[str, str], int] = {}
        """(interface, outcome) -> calls; outcome is ok, err, denied or trap."""
        self.tracer = tracer
        """Spans per message while the system traces (see :mod:`._tracing`)."""
