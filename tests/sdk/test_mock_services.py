"""The SDK's service modules (kv, http, process) under MockHost, in plain Python."""

from __future__ import annotations

import pytest

from airssys.errors import HandlerError
from airssys.sdk import Denied, ServiceError, http, kv, process
from airssys.security import Grants
from airssys.storage import KeyValue, MemoryBackend
from airssys.testing import MockHost
from tests.services.conftest import HERE

PROBE = HERE / "probe" / "app.py"


def test_kv_works_against_an_in_memory_store() -> None:
    with MockHost.load(PROBE) as host:
        assert host.deliver({"op": "set", "key": "a", "value": "1"}) == {"ok": True}
        assert host.deliver({"op": "get", "key": "a"}) == {"value": "1"}
        assert host.deliver({"op": "incr", "key": "n", "delta": 3}) == {"value": 3}
        host.deliver({"op": "set_many", "items": {"u:1": "x", "u:2": "y"}})
        assert host.deliver({"op": "keys", "prefix": "u:"}) == {"keys": ["u:1", "u:2"]}
        assert host.deliver({"op": "cas", "key": "a", "expected": "1", "value": "2"}) == {
            "swapped": True
        }
        assert host.deliver({"op": "get_many", "keys": ["a", "zz"]}) == {"a": "2", "zz": None}
        # the real service underneath, scoped to the component's address
        assert host.storage.open("default").get("a") == b"2"


def test_storage_outlives_a_mock_host_when_shared() -> None:
    with MockHost.load(PROBE) as first:
        first.deliver({"op": "set", "key": "kept", "value": "yes"})
    with MockHost.load(PROBE, storage=first.storage) as second:
        assert second.deliver({"op": "get", "key": "kept"}) == {"value": "yes"}
    with MockHost.load(PROBE) as fresh:
        assert fresh.deliver({"op": "get", "key": "kept"}) == {"value": None}


def test_grants_and_quota_are_enforced() -> None:
    grants = Grants(buckets=("default",))
    storage = KeyValue(MemoryBackend(), checks=grants.compile("/test/component"), quota=100)
    with MockHost.load(PROBE, grants=grants, storage=storage) as host:
        answer = host.deliver({"op": "open", "bucket": "secret"})
        assert answer["type"] == "AccessDenied"
        assert "bucket 'secret' is not granted" in answer["error"]
        answer = host.deliver({"op": "set", "key": "big", "value": "x" * 200})
        assert answer["type"] == "StorageError" and "quota" in answer["error"]
        with pytest.raises(HandlerError, match="quota"):
            host.deliver({"op": "set", "key": "big", "value": "x" * 200, "strict": True})
        answer = host.deliver({"op": "fetch", "url": "http://127.0.0.1:9/"})
        assert answer["type"] == "HttpDenied"
        assert answer["error"].startswith("capability denied: network http://127.0.0.1:9/")
        answer = host.deliver({"op": "run", "command": "/bin/sh"})
        assert answer["type"] == "ProcessDenied"
        assert host.fetched == [] and host.ran == []


def test_http_and_process_reach_the_handlers() -> None:
    with MockHost.load(PROBE) as host:
        answer = host.deliver({"op": "fetch", "url": "http://example.test/"})
        assert answer["type"] == "HttpError" and "http_handler" in answer["error"]
        host.http_handler = lambda method, url, headers, body: (
            201,
            [("X-Seen", f"{method} {url}")],
            b"made",
        )
        answer = host.deliver(
            {"op": "fetch", "method": "POST", "url": "http://example.test/", "body": "hi"}
        )
        assert answer == {
            "status": 201,
            "headers": [["x-seen", "POST http://example.test/"]],
            "body": "made",
        }
        assert host.fetched[-1] == ("POST", "http://example.test/", [], b"hi")
        host.process_handler = lambda command, args, stdin: (0, " ".join(args).encode(), b"")
        answer = host.deliver({"op": "run", "command": "/bin/echo", "args": ["a", "b"]})
        assert answer == {"exit_code": 0, "stdout": "a b", "stderr": "", "truncated": False}
        assert host.ran == [("/bin/echo", ["a", "b"], b"")]


def test_the_exceptions() -> None:
    assert issubclass(kv.AccessDenied, Denied) and issubclass(kv.StorageError, ServiceError)
    assert issubclass(http.HttpDenied, Denied) and issubclass(process.ProcessDenied, Denied)
    assert issubclass(Denied, PermissionError)
    with pytest.raises(RuntimeError, match="no airssys host"):
        kv.open("default")
    with MockHost.load(PROBE), pytest.raises(TypeError, match="bytes"):
        kv.open().set("k", "text")  # type: ignore[arg-type]


def test_http_response_helpers() -> None:
    response = http.Response(200, [("content-type", "application/json")], b'{"a": 1}')
    assert response.ok and response.json() == {"a": 1} and response.text == '{"a": 1}'
    assert response.header("Content-Type") == "application/json"
    assert response.header("missing") is None
    assert not http.Response(404, [], b"").ok
