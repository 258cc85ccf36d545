"""airssys._progress: phases reported to listeners, and the line-per-phase reporter."""

from __future__ import annotations

import threading

import pytest

from airssys._progress import LineReporter, ProgressEvent, about, describe, listen, phase


def test_a_phase_reports_its_start_and_end_with_its_time() -> None:
    events: list[ProgressEvent] = []
    stop = listen(events.append)
    try:
        with about("/app/echo"), phase("compile", detail="not cached") as step:
            step.detail = "not in the compile cache yet"
    finally:
        stop()
    assert [(e.phase, e.subject, e.state) for e in events] == [
        ("compile", "/app/echo", "start"),
        ("compile", "/app/echo", "done"),
    ]
    assert events[0].key == events[1].key
    assert events[1].seconds is not None and events[1].seconds >= 0
    assert events[1].detail == "not in the compile cache yet"
    back = ProgressEvent.from_dict(events[1].as_dict())  # as a node sends it
    assert (back.phase, back.subject, back.state, back.key) == (
        "compile",
        "/app/echo",
        "done",
        events[1].key,
    )


def test_an_error_fails_a_phase_and_an_interrupt_stops_it() -> None:
    events: list[ProgressEvent] = []
    stop = listen(events.append)
    try:
        with pytest.raises(ValueError), phase("build", "x"):
            raise ValueError("bad")
        with pytest.raises(KeyboardInterrupt), phase("build", "x"):
            raise KeyboardInterrupt
    finally:
        stop()
    assert [e.state for e in events] == ["start", "failed", "start", "stopped"]


def test_nobody_listening_nothing_is_made() -> None:
    with phase("compile", "x") as step:
        step.detail = "quiet"  # a library stays quiet: no listener, no event


def test_the_line_reporter_shows_long_phases_and_every_step_when_asked() -> None:
    lines: list[str] = []
    done = threading.Event()

    def write(line: str, _event: ProgressEvent) -> None:
        lines.append(line)
        done.set()

    start = ProgressEvent("compile", "echo", "start", "18.5 MB", key=1)
    end = ProgressEvent("compile", "echo", "done", "18.5 MB", 12.34, key=1)
    never = LineReporter(write, after=3600.0)  # nothing lasts that long: no line
    never(start)
    never(end)
    never.close()
    assert lines == []
    every = LineReporter(write, after=3600.0, every=True)
    every(start)
    every(end)
    assert lines == ["echo: compile 12.3 s (18.5 MB)"]
    lines.clear()
    announced = LineReporter(write, after=0.0)  # everything is long: announced, timed
    announced(start)
    assert done.wait(30)
    announced(ProgressEvent("compile", "echo", "done", "18.5 MB", 0.5, key=1))
    assert lines == ["echo: compile... (18.5 MB)", "echo: compile 0.5 s (18.5 MB)"]
    stopped = ProgressEvent("build", "echo", "stopped", "", 3.0, key=2)
    announced(stopped)
    assert len(lines) == 2  # a stop is said by whoever stopped it
    assert describe(stopped) == "echo: build stopped 3.0 s"
