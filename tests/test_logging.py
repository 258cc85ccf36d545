"""A library is quiet: stderr only, warnings and up by default, no floods (issue 8, item 19)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest
import structlog
from structlog.testing import capture_logs

from airssys import configure_logging
from airssys._logging import Throttle, get_logger, truncate
from tests.conftest import ROOT, fixture_path


@pytest.fixture(autouse=True)
def _default_pipeline() -> object:
    yield
    configure_logging()


def test_an_embedding_service_sees_nothing_on_stdout_and_a_summary_of_floods() -> None:
    code = textwrap.dedent(
        f"""
        import asyncio
        from airssys import Actor, codec, open_system

        class Sink(Actor):
            def on_message(self, message):
                return None

        async def main():
            async with open_system() as system:
                await system.spawn(Sink, name="sink", mailbox=100_000)
                await system.spawn_component(
                    {str(fixture_path("host"))!r},
                    name="host",
                    capabilities={{"messaging": {{"send": ["/#"], "publish": ["#"]}}}},
                )
                for _ in range(300):  # the component logs twice per message
                    await system.ask("/host", codec.encode(b"x", "raw"), sender="/sink")
                for _ in range(5000):  # a dead-letter flood
                    try:
                        system.send("/nobody", b"x")
                    except Exception:
                        pass
                try:
                    system.send("/" + "n" * 4_000_000, b"x")
                except Exception:
                    pass

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    # 5,300 dead letters: 10 lines and a summary per 10 s window (a slow machine may
    # span a few); 300 guest errors: 100 per window
    dead = [line for line in lines if "dead letter" in line]
    assert len(dead) <= 50, dead[:20]
    assert len(lines) < 400, lines[:50]
    assert max(len(line) for line in lines) < 4000
    assert any("more not logged" in line for line in lines)


def test_configure_logging_takes_a_level_json_and_a_stream() -> None:
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    log = get_logger("airssys.test").bind(component="c")
    log.debug("hidden")
    log.info("shown", value="v" * 5000)
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "shown" and event["component"] == "c" and event["level"] == "info"
    assert len(event["value"]) < 700 and "more characters" in event["value"]


def test_unknown_levels_are_refused_naming_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="warning"):
        configure_logging("loud")


def test_the_stdlib_option_hands_lines_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("info", stdlib=True)
    with caplog.at_level(logging.INFO, logger="airssys.test"):
        get_logger("airssys.test").info("through stdlib", n=1)
    assert any("through stdlib" in r.getMessage() for r in caplog.records)


def test_an_application_structlog_configuration_wins() -> None:
    structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
    with capture_logs() as logs:
        get_logger("airssys.test").debug("seen by the app", n=2)
    assert logs == [{"event": "seen by the app", "n": 2, "log_level": "debug"}]


def test_a_throttle_summarises_what_it_held_back() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    throttle = Throttle(get_logger("airssys.test"), "flood", burst=3, window=3600)
    for n in range(100):
        throttle("same kind", n=n)
    throttle.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert "97 more not logged" in lines[-1] and "same kind x97" in lines[-1]


def test_truncate_says_how_much_it_cut() -> None:
    assert truncate("abc", 10) == "abc"
    assert truncate("x" * 100, 10) == "x" * 10 + "... [90 more characters]"


def test_the_pipeline_is_built_once_not_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    class Counted(structlog.dev.ConsoleRenderer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(structlog.dev, "ConsoleRenderer", Counted)
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    for n in range(50):
        get_logger("airssys.test.a").info("line", n=n)
        get_logger("airssys.test.b").bind(k="v").warning("line", n=n)
    assert len(built) == 1
    assert len(stream.getvalue().splitlines()) == 100
    configure_logging("info", stream=stream, json=True)  # a new configuration: rebuilt
    get_logger("airssys.test.a").info("as json", n=1)
    assert json.loads(stream.getvalue().splitlines()[-1])["event"] == "as json"
    configure_logging("info", stream=stream)
    get_logger("airssys.test.a").info("as text", n=2)
    assert len(built) == 2
    assert "as text" in stream.getvalue().splitlines()[-1]


def test_an_added_processor_reaches_the_next_line() -> None:
    from airssys import _logging

    def tag(_logger: object, _method: str, event: dict[str, object]) -> dict[str, object]:
        event["tagged"] = "yes"
        return event

    stream = io.StringIO()
    configure_logging("info", stream=stream, json=True)
    log = get_logger("airssys.test")
    log.info("before")
    _logging._extra_processors.append(tag)
    try:
        log.info("with")
    finally:
        _logging._extra_processors.remove(tag)
    log.info("after")
    before, with_tag, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "tagged" not in before and with_tag["tagged"] == "yes" and "tagged" not in after
