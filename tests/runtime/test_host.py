"""Host imports: messaging reaches the instance's Host, logging reaches structlog."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from airssys.errors import HandlerError
from airssys.runtime import Runtime
from tests.conftest import fixture_path


class RecordingHost:
    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail = fail

    def self_address(self) -> str:
        return "test/recorder"

    def _maybe_fail(self, what: str) -> None:
        if self.fail == what:
            raise LookupError(f"no route for {what}")

    def send(self, to: str, payload: bytes) -> None:
        self._maybe_fail("send")
        self.calls.append(("send", to, payload))

    def publish(self, topic: str, payload: bytes) -> None:
        self._maybe_fail("publish")
        self.calls.append(("publish", topic, payload))

    def request(self, to: str, payload: bytes, timeout_ms: int) -> str:
        self._maybe_fail("request")
        self.calls.append(("request", to, payload, timeout_ms))
        return f"corr-{len(self.calls)}"


def test_messaging_imports_reach_the_host(runtime: Runtime) -> None:
    host = RecordingHost()
    component = runtime.load_file(fixture_path("host"))
    with runtime.instantiate(component, host=host) as instance:
        reply = instance.handle_message("alice", b"hello")
    assert host.calls == [
        ("send", "alice", b"hello"),
        ("publish", "fixture.events", b"hello"),
        ("request", "alice", b"hello", 250),
    ]
    assert reply == b"corr-3"


@pytest.mark.parametrize("what", ["send", "publish", "request"])
def test_host_failure_reaches_the_guest_as_err(runtime: Runtime, what: str) -> None:
    component = runtime.load_file(fixture_path("host"))
    with runtime.instantiate(component, host=RecordingHost(fail=what)) as instance:
        with pytest.raises(HandlerError, match=f"messaging.{what} failed: no route for {what}"):
            instance.handle_message("alice", b"x")
        assert instance.alive


def test_logging_goes_to_structlog_with_the_component_bound(runtime: Runtime) -> None:
    component = runtime.load_file(fixture_path("host"))
    with runtime.instantiate(component, host=RecordingHost(), name="chatty") as instance:
        with capture_logs() as logs:
            instance.handle_message("grüße", b"payload")
    info = [e for e in logs if e["event"] == "grüße"]
    assert info and info[0]["component"] == "chatty"
    assert info[0]["address"] == "test/recorder"
    assert info[0]["log_level"] == "info"
    assert any(e["event"] == "test/recorder" and e["log_level"] == "debug" for e in logs)


def test_callback_delivers_reply_and_error(runtime: Runtime) -> None:
    component = runtime.load_file(fixture_path("host"))
    with runtime.instantiate(component, host=RecordingHost()) as instance:
        with capture_logs() as logs:
            instance.handle_callback("corr-9", b"answer")
            instance.handle_callback("corr-10", TimeoutError("no reply within 250 ms"))
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [
        ("corr-9", "info"),
        ("answer", "info"),
        ("corr-10", "info"),
        ("no reply within 250 ms", "error"),
    ]


def test_callback_on_component_without_one_is_refused(runtime: Runtime) -> None:
    component = runtime.load_file(fixture_path("echo"))
    with runtime.instantiate(component) as instance:
        with pytest.raises(HandlerError, match="does not export"):
            instance.handle_callback("c", b"")


def test_detached_instance_explains_missing_broker(runtime: Runtime) -> None:
    component = runtime.load_file(fixture_path("host"))
    with runtime.instantiate(component) as instance:
        with pytest.raises(HandlerError, match="runs outside an actor system"):
            instance.handle_message("alice", b"x")
