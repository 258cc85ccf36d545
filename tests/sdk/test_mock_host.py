"""The sample components' logic, unit-tested in plain Python through MockHost."""

from __future__ import annotations

import pytest

from airssys.errors import HandlerError
from airssys.testing import MockHost, Sent
from tests.conftest import ROOT

COMPONENTS = ROOT / "components"


def test_echo_answers_in_the_request_codec() -> None:
    with MockHost.load(COMPONENTS / "echo" / "app.py") as host:
        assert host.deliver({"a": [1, 2]}) == {"a": [1, 2]}
        assert host.deliver([1, "x"], codec_name="messagepack") == [1, "x"]
        assert host.deliver(b"\x00\xff", codec_name="raw") == b"\x00\xff"


def test_counter_keeps_a_total_and_rejects_bad_steps() -> None:
    with MockHost.load(COMPONENTS / "counter" / "app.py") as host:
        assert [host.deliver({"add": n})["count"] for n in (1, 2, 3)] == [1, 3, 6]
        with pytest.raises(HandlerError, match="'add' must be an integer"):
            host.deliver({"add": "x"})
        assert host.deliver({}) == {"count": 7}


def test_each_load_gets_fresh_module_state() -> None:
    for _ in range(2):
        with MockHost.load(COMPONENTS / "counter" / "app.py") as host:
            assert host.deliver({"add": 5}) == {"count": 5}


def test_crasher_crashes_on_poison_and_logs_first() -> None:
    with MockHost.load(COMPONENTS / "crasher" / "app.py") as host:
        assert host.deliver("a") == {"ok": "a", "handled": 1}
        with pytest.raises(RuntimeError, match="poisoned"):
            host.deliver("poison")
        assert host.logs == [("warn", "poisoned after 1 messages; crashing")]


def test_aggregator_fans_out_and_joins_replies() -> None:
    with MockHost.load(COMPONENTS / "aggregator" / "app.py") as host:
        host.refuse.add("/gone")
        started = host.deliver({"ask": ["/a", "/b", "/gone"], "value": 7}, sender="/me")
        assert started == {"job": "job-1", "pending": 3}
        first, second = host.requests()
        assert (first.to, first.value, second.to) == ("/a", 7, "/b")
        host.reply_to(first.correlation_id or "", {"sum": 8})
        assert not [s for s in host.sent if s.kind == "send"]  # still waiting for /b
        host.fail(second.correlation_id or "", "no reply within 1 s")
        assert host.sent[-1] == Sent(
            "send",
            "/me",
            {
                "job": "job-1",
                "results": {
                    "/gone": {"error": "no actor at '/gone'"},
                    "/a": {"sum": 8},
                    "/b": {"error": "no reply within 1 s"},
                },
            },
        )


def test_aggregator_rejects_malformed_jobs() -> None:
    with MockHost.load(COMPONENTS / "aggregator" / "app.py") as host:
        with pytest.raises(HandlerError, match="expected"):
            host.deliver({"nope": 1})


def test_mock_host_must_be_entered() -> None:
    host = MockHost.load(COMPONENTS / "echo" / "app.py")
    with pytest.raises(RuntimeError, match="with"):
        host.deliver(1)
