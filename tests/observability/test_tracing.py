"""Tracing with OpenTelemetry's SDK and its in-memory exporter."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from airssys import codec, configure_logging
from airssys.actors import Actor, open_system
from airssys.errors import HandlerError
from tests.conftest import fixture_path


class Sink(Actor):
    def __init__(self) -> None:
        self.got: asyncio.Queue[Any] = asyncio.Queue()

    def on_message(self, message: Any) -> None:
        self.got.put_nowait(message)


@pytest.fixture
def traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


async def test_one_trace_across_a_request_to_another_component_and_back(
    traced: tuple[TracerProvider, InMemorySpanExporter], built_components: Path, shared_cache: Path
) -> None:
    provider, exporter = traced
    sink = Sink()
    async with open_system(cache_dir=shared_cache, storage="memory", tracing=provider) as system:
        await system.spawn(lambda: sink, name="sink")
        await system.spawn_component(fixture_path("echo"), name="echo")
        await system.spawn_component(
            built_components / "aggregator",
            name="agg",
            capabilities={"messaging": {"send": ["/#"]}},
        )
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("client") as client:
            job = {"ask": ["/echo"], "value": 7, "reply_to": "/sink"}
            await system.ask("/agg", codec.encode(job))
        done = codec.decode(await asyncio.wait_for(sink.got.get(), 10))
        assert done["results"] == {"/echo": 7}
    spans = by_name(exporter.get_finished_spans())
    assert {"client", "handle /agg", "handle /echo", "callback /agg"} <= set(spans)
    trace_id = client.get_span_context().trace_id
    for name in ("handle /agg", "handle /echo", "callback /agg"):
        assert spans[name].context is not None and spans[name].context.trace_id == trace_id, name
    handle = spans["handle /agg"]
    assert handle.parent is not None and handle.parent.span_id == client.get_span_context().span_id
    assert handle.context is not None
    # the request and its reply are both children of the requesting message's span
    for name in ("handle /echo", "callback /agg"):
        parent = spans[name].parent
        assert parent is not None and parent.span_id == handle.context.span_id, name
    assert handle.attributes is not None
    assert handle.attributes["airssys.component"] == "aggregator"
    assert handle.attributes["airssys.outcome"] == "ok"
    assert int(str(handle.attributes["airssys.fuel"])) > 0


async def test_publish_carries_the_trace_and_errors_mark_the_span(
    traced: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    provider, exporter = traced
    async with open_system(cache_dir=tmp_path, storage="memory", tracing=provider) as system:
        listen = {"messaging": {"subscribe": ["news.*"]}}
        await system.spawn_component(fixture_path("echo"), name="a", capabilities=listen)
        await system.spawn_component(fixture_path("echo"), name="b", capabilities=listen)
        system.subscribe("news.*", "/a")
        system.subscribe("news.*", "/b")
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("publisher") as publisher:
            assert system.publish("news.today", codec.encode("hi")) == 2
        with pytest.raises(HandlerError):
            await system.ask("/a", codec.encode(1), sender="err:no")
        async with asyncio.timeout(10):
            while len(exporter.get_finished_spans()) < 4:
                await asyncio.sleep(0.01)
    spans = exporter.get_finished_spans()
    handled = [s for s in spans if s.name in ("handle /a", "handle /b")]
    published = [s for s in handled if s.parent is not None]
    assert len(published) == 2
    for span in published:
        assert span.context is not None
        assert span.context.trace_id == publisher.get_span_context().trace_id
    failed = [s for s in handled if s.attributes and s.attributes["airssys.outcome"] == "error"]
    assert len(failed) == 1 and failed[0].status.status_code is StatusCode.ERROR


async def test_log_lines_carry_trace_ids_while_tracing(
    traced: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    provider, _ = traced
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    async with open_system(cache_dir=tmp_path, storage="memory", tracing=provider) as system:
        await system.spawn_component(
            fixture_path("host"), name="h", capabilities={"messaging": {"send": ["/#"]}}
        )
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("client") as client:
            with pytest.raises(HandlerError):  # its publish is not granted; it logs first
                await system.ask("/h", codec.encode("x"), sender="/h")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    guest = [line for line in lines if line.get("address") == "/h" and "trace_id" in line]
    assert guest, lines
    assert guest[0]["trace_id"] == format(client.get_span_context().trace_id, "032x")


def test_without_tracing_opentelemetry_is_never_imported() -> None:
    script = (
        "import asyncio, sys\n"
        "from airssys import open_system, codec\n"
        "async def main():\n"
        "    async with open_system(storage='memory') as system:\n"
        f"        await system.spawn_component({str(fixture_path('echo'))!r}, name='e')\n"
        "        await system.ask('/e', codec.encode(1))\n"
        "        system.metrics\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
