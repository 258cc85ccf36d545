"""system.metrics, system.snapshot() and system.health_report(): what they count."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from airssys import codec
from airssys.actors import ActorState, open_system
from airssys.errors import ComponentTrap, HandlerError
from airssys.observability import LATENCY_BUCKETS
from tests.conftest import fixture_path

POISON = codec.encode(b"poison", "raw")
MESSAGING = {"messaging": {"send": ["/#"], "publish": ["#"]}}


def scrape(registry: object) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample as {(name, labels): value}, through prometheus-client's own parser."""
    text = generate_latest(registry).decode()  # type: ignore[arg-type]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


async def wait_running(system: object, address: str) -> None:
    ref = system.ref(address)  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        while ref.state is not ActorState.RUNNING:
            await asyncio.sleep(0.005)


async def test_messages_are_counted_by_outcome_and_timed(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_supervisor([system.component_spec("t", fixture_path("trap"))], name="s")
        for i in range(5):
            await system.ask("/s/t", codec.encode({"i": i}))
        with pytest.raises(ComponentTrap):
            await system.ask("/s/t", POISON)
        await wait_running(system, "/s/t")
        await system.ask("/s/t", codec.encode("after"))
        samples = scrape(system.metrics)
        labels = {"address": "/s/t", "component": "trap"}
        assert value(samples, "airssys_messages_total", outcome="ok", **labels) == 6
        assert value(samples, "airssys_messages_total", outcome="trap", **labels) == 1
        assert value(samples, "airssys_restarts_total", address="/s/t") == 1
        count = value(samples, "airssys_handle_seconds_count", **labels)
        assert count == 6  # the trapped message has no latency: it never answered
        assert value(samples, "airssys_handle_seconds_bucket", le="+Inf", **labels) == count
        assert value(samples, "airssys_handle_seconds_sum", **labels) > 0
        assert value(samples, "airssys_fuel_consumed_total", **labels) > 0
        assert value(samples, "airssys_messages_processed_total", address="/s/t") == 6


async def test_handler_errors_are_their_own_outcome(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_component(fixture_path("echo"), name="e")
        with pytest.raises(HandlerError):
            await system.ask("/e", codec.encode(1), sender="err:nope")
        await system.ask("/e", codec.encode(2))
        samples = scrape(system.metrics)
        assert (
            value(
                samples, "airssys_messages_total", address="/e", component="echo", outcome="error"
            )
            == 1
        )
        assert (
            value(samples, "airssys_messages_total", address="/e", component="echo", outcome="ok")
            == 1
        )


async def test_counters_survive_restarts_and_the_supervisor_reports_a_crash_loop(
    tmp_path: Path,
) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_supervisor(
            [system.component_spec("t", fixture_path("trap"))],
            name="app",
            intensity=100,
            period=60,
            unhealthy_after=3,
        )
        assert system.health_report().healthy
        for crash in range(3):
            await system.ask("/app/t", codec.encode(crash))
            with pytest.raises(ComponentTrap):
                await system.ask("/app/t", POISON)
            await wait_running(system, "/app/t")
        samples = scrape(system.metrics)
        assert (
            value(
                samples, "airssys_messages_total", address="/app/t", component="trap", outcome="ok"
            )
            == 3
        )
        assert (
            value(
                samples,
                "airssys_messages_total",
                address="/app/t",
                component="trap",
                outcome="trap",
            )
            == 3
        )
        assert value(samples, "airssys_restarts_total", address="/app/t") == 3
        assert value(samples, "airssys_supervisor_healthy", address="/app") == 0
        assert value(samples, "airssys_healthy") == 0
        report = system.health_report()
        assert not report.healthy
        assert report.problems == ("/app is crash-looping: 3 restarts in the last 60 s (t)",)
        rows = {row.address: row for row in system.snapshot()}
        assert [row.address for row in system.snapshot()] == ["/app", "/app/t"]
        assert rows["/app"].kind == "supervisor" and not rows["/app"].healthy
        assert rows["/app/t"].traps == 3 and rows["/app/t"].calls == 3
        assert rows["/app/t"].restarts == 3 and rows["/app/t"].parent == "/app"
        assert rows["/app/t"].as_dict()["component"] == "trap"


async def test_a_supervisor_that_gave_up_leaves_the_system_unhealthy(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        sup = await system.spawn_supervisor(
            [system.component_spec("t", fixture_path("trap"))], name="app", intensity=0
        )
        with pytest.raises(ComponentTrap):
            await system.ask("/app/t", POISON)
        async with asyncio.timeout(10):
            while sup.ref.is_alive:
                await asyncio.sleep(0.005)
        report = system.health_report()
        assert not report.healthy
        assert report.problems[0].startswith("supervisor /app gave up: supervisor /app exceeded")


async def test_unhealthy_after_is_checked() -> None:
    async with open_system(storage="memory") as system:
        with pytest.raises(ValueError, match="unhealthy_after must be an int >= 1"):
            await system.spawn_supervisor([], unhealthy_after=0)


async def test_host_calls_dead_letters_and_actor_states_are_counted(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_component(fixture_path("host"), name="h", capabilities=MESSAGING)
        # the fixture sends back to its sender and publishes to a topic nobody hears
        with pytest.raises(HandlerError):  # its send to the unknown sender fails first
            await system.ask("/h", codec.encode("x"), sender="/nobody")
        await system.spawn_component(fixture_path("host"), name="denied", capabilities={})
        with pytest.raises(HandlerError, match="capability denied"):
            await system.ask("/denied", codec.encode("x"), sender="/h")
        samples = scrape(system.metrics)
        assert (
            value(
                samples,
                "airssys_host_calls_total",
                address="/h",
                interface="messaging",
                outcome="err",
            )
            == 1
        )
        assert (
            value(
                samples,
                "airssys_host_calls_total",
                address="/denied",
                interface="messaging",
                outcome="denied",
            )
            == 1
        )
        assert value(samples, "airssys_capability_denials_total", address="/denied") == 1
        assert value(samples, "airssys_dead_letters_total", reason="no_actor") == 1
        assert value(samples, "airssys_dead_letters_total", reason="denied") == 1
        assert value(samples, "airssys_actors", state="running") == 2
        assert value(samples, "airssys_component_memory_limit_bytes", address="/h") == 64 * 2**20


async def test_latency_histogram_off_with_metrics_false(tmp_path: Path) -> None:
    async with open_system(cache_dir=tmp_path, storage="memory", metrics=False) as system:
        await system.spawn_component(fixture_path("echo"), name="e")
        await system.ask("/e", codec.encode(1))
        samples = scrape(system.metrics)
        assert (
            value(samples, "airssys_messages_total", address="/e", component="echo", outcome="ok")
            == 1
        )
        assert not any(name.startswith("airssys_handle_seconds") for name, _ in samples)


def test_latency_buckets_are_cumulative_with_inf_last() -> None:
    from airssys.observability import ComponentStats

    stats = ComponentStats()
    assert stats.latency is not None
    for seconds in (0.00001, LATENCY_BUCKETS[0], 0.003, 99.0):
        stats.latency.observe(seconds)
    buckets = dict(stats.latency.cumulative())
    assert buckets[repr(LATENCY_BUCKETS[0])] == 2  # le: the bound itself is inside
    assert buckets["0.005"] == 3
    assert buckets["10.0"] == 3
    assert buckets["+Inf"] == 4


async def test_the_shipped_alert_rules_name_metrics_that_exist(tmp_path: Path) -> None:
    import re

    from tests.conftest import ROOT

    rules = (ROOT / "docs" / "prometheus-alerts.yml").read_text()
    named = set(re.findall(r"\bairssys_[a-z_]+", rules))
    assert named
    async with open_system(cache_dir=tmp_path, storage="memory") as system:
        await system.spawn_supervisor([system.component_spec("e", fixture_path("echo"))], name="s")
        await system.ask("/s/e", codec.encode(1))
        with pytest.raises(Exception, match="no actor"):
            system.send("/nobody", codec.encode(1))
        await system.spawn_component(fixture_path("host"), name="h", capabilities={})
        with pytest.raises(HandlerError):
            await system.ask("/h", codec.encode(1), sender="/s/e")
        exposed = {name for name, _ in scrape(system.metrics)}
    assert named <= exposed, named - exposed
