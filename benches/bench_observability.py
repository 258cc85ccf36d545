"""What observability costs: metrics and tracing on the full message path, and peers.

Measured in one run, side by side. The message path is the default one:
``open_system(...)``, components/fixtures/echo.wat spawned with
``system.spawn_component`` (default Limits, execution="auto"), warmed up past its
probation (2 * PROBATION asks first, so it runs inline on the event loop), then
``system.ask("/echo", payload)`` with a 64-byte raw payload: bursts of asks from 64
callers in flight (messages/s), each followed by a few sequential asks from one
caller (their p50). The machine is noisy (2 vCPUs, shared), so configurations are
interleaved: each round opens one system per configuration, all at once, and
alternates short bursts between them (the order rotating); a row's rate is the
median over its bursts, and an overhead is the median of the burst-by-burst
overheads (each burst against the other configuration's burst next to it). Rows:

  * "metrics=False": ``open_system(metrics=False)``: the counters only (they are
    kept either way), no latency histogram;
  * "default (metrics on)": ``open_system()``: every message is also timed into its
    address's latency histogram. One message is one event: the integer counts plus
    one histogram observation (a clock read, a bisect, two adds);
  * "tracing=SDK simple processor": ``open_system(tracing=provider)``, an
    OpenTelemetry SDK TracerProvider with a SimpleSpanProcessor over an exporter
    that drops every span (so this is the SDK's own cost, not an exporter's);
  * "tracing=SDK batch processor": the same with a BatchSpanProcessor (the
    production setting; its worker thread exports in the background, and drops
    spans when its queue is full, as it would in production);
  * "default (tracing off)": ``open_system()`` again, the tracing rows' baseline,
    run next to them (while any system traces, every envelope captures the current
    context, ~0.1 us, this one's too).

``metrics.overhead_pct`` = (off_rate / on_rate - 1) * 100 and
``metrics.per_event_us`` = (1 / on_rate - 1 / off_rate) * 1e6 (per message), from
"metrics=False" and "default (metrics on)"; ``tracing.*`` the same for the batch
processor against tracing off (``tracing.simple.*`` for the simple one). Aims:
metrics overhead <= 5% and <= 1 us per event.

Peers, per event (``per_call`` microbenchmarks, each including one Python call):
prometheus-client's ``Counter.labels("x").inc()`` (the child looked up each time),
a cached child's ``.inc()``, ``Histogram.labels("x").observe(v)``, and counter plus
histogram together (what instrumenting the hot path with prometheus-client directly
would cost); OpenTelemetry SDK metrics ``Counter.add(1, attrs)`` and
``Histogram.record(v, attrs)`` (a MeterProvider with an InMemoryMetricReader); next
to airssys's own per-event work: ``ComponentStats().latency.observe(v)`` plus the
integer adds. Ratios are peer cost / ours. Also airssys's tracing work per message
off the path: a span's begin and end (MessageTracer), and an envelope's context
capture.

Scrape cost: ``prometheus_client.generate_latest(system.metrics)`` with 1 and with
100 echo components spawned (each has handled a message): ``metrics.scrape_ms_100``.

    python benches/bench_observability.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec
from airssys.actors import PROBATION, ActorSystem, open_system
from airssys.observability import LATENCY_BUCKETS, ComponentStats
from benches._common import (
    FIXTURES,
    emit_json,
    machine,
    parse_args,
    per_call,
    quiet_logs,
    table,
)

ECHO = FIXTURES / "echo.wat"
WIDTH = 64  # callers in flight
AIM_PCT = 5.0  # metrics on costs at most this much throughput
AIM_US = 1.0  # and at most this much per event
SAMPLE = 0.00004  # a latency to observe in the microbenchmarks: 40 us


class DropExporter(SpanExporter):
    """Takes every span and keeps none: what the SDK costs, without an exporter's."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def payload() -> bytes:
    return codec.encode(b"x" * 63, "raw")  # 1-byte raw prefix: 64 bytes in all


# --- the message path ----------------------------------------------------------------


class Config:
    """One row: a label and its open_system arguments; what its bursts measured."""

    def __init__(self, key: str, label: str, **kwargs: Any) -> None:
        self.key, self.label, self.kwargs = key, label, kwargs
        self.rates: list[float] = []
        """Messages/s of each burst of asks, 64 in flight."""
        self.latencies: list[float] = []
        """Every sequential ask (one caller), seconds."""
        self.inline: list[bool] = []
        """Per burst: the component was still on the event loop after it
        (execution="auto" moves it back to a worker thread when it catches one
        message taking longer than STALL_BUDGET_MS on the loop)."""

    def rate(self) -> float:
        return statistics.median(self.rates)

    def p50_us(self) -> float:
        return statistics.median(self.latencies) * 1e6

    def row(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "per_s": self.rate(),
            "per_s_min": min(self.rates),
            "per_s_max": max(self.rates),
            "p50_us": self.p50_us(),
            "bursts": len(self.rates),
            "bursts_inline": sum(self.inline),
        }


def tracer_provider(batch: bool) -> tuple[TracerProvider, DropExporter]:
    exporter = DropExporter()
    provider = TracerProvider()
    if batch:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def in_flight(system: ActorSystem, data: bytes, n: int) -> float:
    async def caller(count: int) -> None:
        for _ in range(count):
            await system.ask("/echo", data)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(n // WIDTH) for _ in range(WIDTH)))
    return (n // WIDTH) * WIDTH / (time.perf_counter() - t0)


async def sequential(system: ActorSystem, data: bytes, n: int) -> list[float]:
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        await system.ask("/echo", data)
        samples.append(clock() - t0)
    return samples


async def interleaved(
    configs: list[Config], rounds: int, bursts: int, n_burst: int, n_seq: int
) -> None:
    """Each round opens one system per configuration, all at once, and alternates
    short bursts between them (the order rotating), so that a noisy neighbour on
    the machine hits every configuration alike."""
    data = payload()
    for r in range(rounds):
        async with contextlib.AsyncExitStack() as stack:
            pairs = []
            for config in configs:
                system = await stack.enter_async_context(open_system(config.key, **config.kwargs))
                await system.spawn_component(ECHO, name="echo")  # default Limits, "auto"
                pairs.append((config, system))
            for _, system in pairs:
                for _ in range(2 * PROBATION):  # past the probation: inline from here on
                    await system.ask("/echo", data)
                await in_flight(system, data, 16 * WIDTH)  # and the 64-caller path warm
            gc.collect()
            for k in range(bursts):
                shift = (r + k) % len(pairs)
                for config, system in pairs[shift:] + pairs[:shift]:
                    config.rates.append(await in_flight(system, data, n_burst))
                    config.latencies.extend(await sequential(system, data, n_seq))
                    config.inline.append((await system.health("/echo")).on_loop is True)


def overhead(base: Config, with_it: Config) -> dict[str, Any]:
    """What ``with_it`` costs against ``base``, burst by burst (the two ran back to
    back): overhead % = (base_rate / rate - 1) * 100, per event = 1/rate - 1/base_rate."""
    pct = [(a / b - 1) * 100 for a, b in zip(base.rates, with_it.rates, strict=True)]
    us = [(1 / b - 1 / a) * 1e6 for a, b in zip(base.rates, with_it.rates, strict=True)]
    quartiles = statistics.quantiles(pct, n=4)
    return {
        "overhead_pct": statistics.median(pct),
        "per_event_us": statistics.median(us),
        "overhead_pct_p25": quartiles[0],
        "overhead_pct_p75": quartiles[2],
        "overhead_pct_of_median_rates": (base.rate() / with_it.rate() - 1) * 100,
        "p50_extra_us": with_it.p50_us() - base.p50_us(),
    }


# --- peers, per event ------------------------------------------------------------------


def peers(budget: float) -> dict[str, float]:
    """Seconds per event of each way of counting one message."""
    out: dict[str, float] = {}
    x = SAMPLE

    def nothing() -> None:
        pass

    out["call_overhead"] = per_call(nothing, budget)

    # airssys: what _run_batch does per message with metrics on
    stats = ComponentStats()
    histogram = stats.latency
    assert histogram is not None
    observe = histogram.observe
    clock = time.perf_counter

    def ours() -> None:
        observe(x)
        stats.handled += 1
        stats.errors += 0

    started = clock()

    def ours_with_clock() -> None:  # the extra clock read the histogram needs
        observe(clock() - started)
        stats.handled += 1
        stats.errors += 0

    out["airssys_event"] = per_call(ours, budget)
    out["airssys_event_with_clock"] = per_call(ours_with_clock, budget)

    # prometheus-client on the hot path
    registry = CollectorRegistry()
    counter = Counter("bench_messages", "messages", ["address"], registry=registry)
    latency = Histogram(
        "bench_handle_seconds", "latency", ["address"], buckets=LATENCY_BUCKETS, registry=registry
    )
    child = counter.labels("x")
    child_latency = latency.labels("x")
    out["prometheus_counter_labels_inc"] = per_call(lambda: counter.labels("x").inc(), budget)
    out["prometheus_counter_cached_inc"] = per_call(child.inc, budget)
    out["prometheus_histogram_labels_observe"] = per_call(
        lambda: latency.labels("x").observe(x), budget
    )

    def prometheus_event() -> None:
        counter.labels("x").inc()
        latency.labels("x").observe(x)

    def prometheus_event_cached() -> None:
        child.inc()
        child_latency.observe(x)

    out["prometheus_event"] = per_call(prometheus_event, budget)
    out["prometheus_event_cached"] = per_call(prometheus_event_cached, budget)

    # OpenTelemetry SDK metrics
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("bench")
    otel_counter = meter.create_counter("messages")
    otel_latency = meter.create_histogram("handle", unit="s")
    attrs = {"address": "x"}
    out["otel_counter_add"] = per_call(lambda: otel_counter.add(1, attrs), budget)
    out["otel_histogram_record"] = per_call(lambda: otel_latency.record(x, attrs), budget)

    def otel_event() -> None:
        otel_counter.add(1, attrs)
        otel_latency.record(x, attrs)

    out["otel_event"] = per_call(otel_event, budget)
    reader.get_metrics_data()  # the reader really holds what was recorded
    provider.shutdown()

    # airssys's tracing, per message, off the message path: the span's begin and end
    # (MessageTracer) and the context each envelope captures
    from opentelemetry import context

    from airssys.messages import Envelope
    from airssys.observability._tracing import MessageTracer

    envelope = Envelope(payload(), sender="bench")
    envelope.trace = context.get_current()
    out["otel_context_capture"] = per_call(context.get_current, budget)
    for kind in ("simple", "batch"):
        tracing, _ = tracer_provider(batch=kind == "batch")
        tracer = MessageTracer(tracing)

        def span(tracer: MessageTracer = tracer) -> None:
            begun, token = tracer.begin(envelope, "/echo", "echo")
            tracer.end(begun, token, "ok", 0)

        out[f"airssys_span_{kind}"] = per_call(span, budget)
        tracing.shutdown()
    return out


# --- scrape --------------------------------------------------------------------------


async def scrape(budget: float) -> dict[str, float]:
    out: dict[str, float] = {}
    data = payload()
    async with open_system() as system:
        registry = system.metrics
        have = 0
        for count in (1, 100):
            for i in range(have, count):
                await system.spawn_component(ECHO, name=f"c{i}")
                await system.ask(f"/c{i}", data)
            have = count
            text = generate_latest(registry)
            out[f"scrape_ms_{count}"] = per_call(lambda: generate_latest(registry), budget) * 1e3
            out[f"scrape_bytes_{count}"] = float(len(text))
    return out


# --- report --------------------------------------------------------------------------


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.3f} us"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    quiet_logs()
    quick = args.quick
    rounds = 3 if quick else 5
    bursts = 12 if quick else 20  # per round, per configuration
    n_burst = 50 * WIDTH if quick else 100 * WIDTH
    n_seq = 100 if quick else 200  # sequential asks per burst
    budget = 0.25 if quick else 1.0

    # metrics: two systems side by side
    off = Config("metrics_off", "metrics=False", metrics=False)
    on = Config("default", "default (metrics on)")
    t0 = time.perf_counter()
    asyncio.run(interleaved([off, on], rounds, bursts, n_burst, n_seq))
    # tracing: three side by side; while a system traces, every envelope captures the
    # current context (~0.1 us), the untraced one's too, so its row is its own
    simple, simple_exporter = tracer_provider(batch=False)
    batch, batch_exporter = tracer_provider(batch=True)
    base = Config("default_next_to_tracing", "default (tracing off)")
    t_simple = Config("tracing_simple", "tracing=SDK simple processor", tracing=simple)
    t_batch = Config("tracing_batch", "tracing=SDK batch processor", tracing=batch)
    asyncio.run(interleaved([base, t_simple, t_batch], rounds, bursts, n_burst, n_seq))
    simple.shutdown()
    batch.shutdown()
    path_s = time.perf_counter() - t0
    peer = peers(budget)
    scraped = asyncio.run(scrape(budget))

    m = overhead(off, on)
    tb = overhead(base, t_batch)
    ts = overhead(base, t_simple)
    ours_s = peer["airssys_event"]
    peers_us = {k: v * 1e6 for k, v in peer.items()}
    ratios = {
        k: peer[k] / ours_s
        for k in (
            "prometheus_counter_labels_inc",
            "prometheus_counter_cached_inc",
            "prometheus_histogram_labels_observe",
            "prometheus_event",
            "prometheus_event_cached",
            "otel_counter_add",
            "otel_histogram_record",
            "otel_event",
        )
    }
    aim_met = m["overhead_pct"] <= AIM_PCT and m["per_event_us"] <= AIM_US
    result: dict[str, Any] = {
        "benchmark": "observability",
        "quick": quick,
        "settings": {
            "rounds": rounds,
            "bursts_per_round": bursts,
            "asks_per_burst": n_burst,
            "callers": WIDTH,
            "sequential_asks_per_burst": n_seq,
            "payload_bytes": len(payload()),
            "message_path_seconds": path_s,
        },
        "metrics": {
            **m,
            "off_per_s": off.rate(),
            "on_per_s": on.rate(),
            "off_p50_us": off.p50_us(),
            "on_p50_us": on.p50_us(),
            "scrape_ms_100": scraped["scrape_ms_100"],
            "scrape_ms_1": scraped["scrape_ms_1"],
            "scrape_bytes_100": scraped["scrape_bytes_100"],
            "aim_pct": AIM_PCT,
            "aim_us": AIM_US,
            "aim_met": aim_met,
        },
        "tracing": {
            **tb,
            "simple": ts,
            "off_per_s": base.rate(),
            "batch_per_s": t_batch.rate(),
            "simple_per_s": t_simple.rate(),
            "off_p50_us": base.p50_us(),
            "batch_p50_us": t_batch.p50_us(),
            "simple_p50_us": t_simple.p50_us(),
            "span_simple_us": peers_us["airssys_span_simple"],
            "span_batch_us": peers_us["airssys_span_batch"],
            "context_capture_us": peers_us["otel_context_capture"],
            "spans_exported_simple": simple_exporter.spans,
            "spans_exported_batch": batch_exporter.spans,
        },
        "rows": {c.key: c.row() for c in (off, on, base, t_simple, t_batch)},
        "peers_us": peers_us,
        "ratios": ratios,
        "machine": machine(),
    }
    if args.json:
        emit_json(result)
        return

    print(
        "ask -> echo.wat -> reply, 64 B, default Limits, execution='auto', after probation; "
        f"{rounds} rounds x {bursts} alternating bursts of {n_burst:,} asks"
    )

    def cost(o: dict[str, Any], against: str) -> str:
        return (
            f"{o['overhead_pct']:+.1f}% [{o['overhead_pct_p25']:+.1f}, "
            f"{o['overhead_pct_p75']:+.1f}] vs {against}, {o['per_event_us']:+.2f} us/msg"
        )

    rows = []
    for c, note in (
        (off, ""),
        (on, cost(m, "metrics=False")),
        (base, ""),
        (t_simple, cost(ts, "tracing off")),
        (t_batch, cost(tb, "tracing off")),
    ):
        rows.append(
            [
                c.label,
                f"{c.rate():,.0f}",
                f"{min(c.rates):,.0f}-{max(c.rates):,.0f}",
                f"{c.p50_us():.1f}",
                f"{sum(c.inline)}/{len(c.inline)}",
                note,
            ]
        )
    headers = ["settings", f"{WIDTH} in flight/s", "range", "1 caller p50 us", "inline", "cost"]
    print(table(headers, rows))
    print(
        "(medians over bursts; cost: median of the burst-by-burst overhead [quartiles]; "
        "inline: bursts after which the component was still on the event loop, in the "
        "others execution='auto' had caught a message over its stall budget and moved "
        "it to a worker thread)"
    )
    print(
        f"metrics overhead {m['overhead_pct']:.1f}%, {m['per_event_us']:.2f} us per message; "
        f"aim <= {AIM_PCT:.0f}% and <= {AIM_US:.0f} us: {'met' if aim_met else 'NOT met'}"
    )
    print()
    print("per event (one message: a counter and a latency observation), each incl. one call")
    peer_rows: list[list[str]] = [
        ["empty call (the loop's own cost)", fmt_us(peer["call_overhead"]), ""],
        ["airssys ComponentStats: observe + int adds", fmt_us(ours_s), "1.00"],
        [
            "airssys, with the clock read",
            fmt_us(peer["airssys_event_with_clock"]),
            f"{peer['airssys_event_with_clock'] / ours_s:.2f}",
        ],
    ]
    names = {
        "prometheus_counter_labels_inc": 'prometheus Counter.labels("x").inc()',
        "prometheus_counter_cached_inc": "prometheus cached child .inc()",
        "prometheus_histogram_labels_observe": 'prometheus Histogram.labels("x").observe()',
        "prometheus_event": "prometheus counter + histogram (labels)",
        "prometheus_event_cached": "prometheus counter + histogram (cached)",
        "otel_counter_add": "OTel SDK Counter.add(1, attrs)",
        "otel_histogram_record": "OTel SDK Histogram.record(v, attrs)",
        "otel_event": "OTel SDK counter + histogram",
    }
    for key, name in names.items():
        peer_rows.append([name, fmt_us(peer[key]), f"{ratios[key]:.2f}"])
    print(table(["per event", "time", "x ours"], peer_rows))
    print(
        f"airssys tracing per message, off the path: span begin + end "
        f"{peers_us['airssys_span_simple']:.1f} us (simple processor), "
        f"{peers_us['airssys_span_batch']:.1f} us (batch processor); "
        f"context capture per envelope {peers_us['otel_context_capture']:.2f} us"
    )
    print()
    print(
        f"scrape, generate_latest(system.metrics): 100 components "
        f"{scraped['scrape_ms_100']:.2f} ms ({scraped['scrape_bytes_100'] / 1024:.0f} KiB), "
        f"1 component {scraped['scrape_ms_1']:.3f} ms"
    )


if __name__ == "__main__":
    main()
