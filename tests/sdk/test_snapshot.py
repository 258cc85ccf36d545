"""Durable state in the SDK (durable(), @on_snapshot/@on_restore), through MockHost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airssys import codec, sdk
from airssys.errors import HandlerError
from airssys.testing import MockHost
from tests.conftest import ROOT

COUNTER = ROOT / "components" / "counter" / "app.py"
JSON_PREFIX = codec.JSON.prefix


def _module(tmp_path: Path, source: str, name: str = "app.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


NOTES = """\
from airssys.sdk import durable, on_message

state = durable(notes=[], by_user={}, last=None)


@on_message
def handle(message):
    value = message.value
    if value == "show":
        return dict(state)
    if value == "poison":
        state["notes"].append({1, 2})
        return None
    state["notes"].append(value["note"])
    state["by_user"].setdefault(message.sender, 0)
    state["by_user"][message.sender] += 1
    state["last"] = value["note"]
    return len(state["notes"])
"""


def test_the_counter_keeps_its_total_in_durable_state() -> None:
    with MockHost.load(COUNTER) as host:
        assert host.snapshot() == JSON_PREFIX + b'{"count":0}'
        assert [host.deliver({"add": n}) for n in (2, 3)] == [{"count": 2}, {"count": 5}]
        state = host.snapshot()
    assert codec.decode(state) == {"count": 5}
    with MockHost.load(COUNTER) as fresh:
        assert fresh.deliver({}) == {"count": 1}  # a fresh module starts over...
    with MockHost.load(COUNTER) as fresh:
        fresh.restore(state)  # ...unless it is restored first
        assert fresh.deliver({"add": 10}) == {"count": 15}
        assert fresh.snapshot() == JSON_PREFIX + b'{"count":15}'


def test_state_round_trips_into_a_fresh_module(tmp_path: Path) -> None:
    app = _module(tmp_path, NOTES)
    with MockHost.load(app) as host:
        assert host.deliver({"note": "a"}, sender="/u1") == 1
        assert host.deliver({"note": "b"}, sender="/u2") == 2
        assert host.deliver({"note": "c"}, sender="/u1") == 3
        state = host.snapshot()
        before = host.deliver("show")
    assert json.loads(state[len(JSON_PREFIX) :]) == before
    with MockHost.load(app) as fresh:
        fresh.restore(state)
        assert fresh.deliver("show") == before
        assert fresh.deliver({"note": "d"}, sender="/u2") == 4
        assert fresh.deliver("show")["by_user"] == {"/u1": 2, "/u2": 2}


def test_restore_resets_to_the_initial_values_then_applies_the_snapshot(tmp_path: Path) -> None:
    app = _module(tmp_path, NOTES)
    with MockHost.load(app) as host:
        host.deliver({"note": "a"})
        host.restore(codec.encode({"last": "old"}))  # a snapshot of an older version
        assert host.deliver("show") == {"notes": [], "by_user": {}, "last": "old"}
        host.deliver({"note": "x"})
        host.restore(b"")  # nothing: the initial values
        assert host.deliver("show") == {"notes": [], "by_user": {}, "last": None}
        host.restore(codec.encode({"notes": ["m"], "extra": 1}, "messagepack"))  # any codec
        assert host.deliver("show") == {"notes": ["m"], "by_user": {}, "last": None, "extra": 1}


def test_the_initial_values_are_copied(tmp_path: Path) -> None:
    app = _module(tmp_path, NOTES)
    with MockHost.load(app) as host:
        host.deliver({"note": "a"})
        host.restore(b"")
        host.deliver({"note": "b"})
        assert host.deliver("show")["notes"] == ["b"]


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (b"\x80", "the snapshot cannot be decoded: malformed multicodec prefix"),
        (b"\xff\x01", "unknown multicodec prefix"),
        (JSON_PREFIX + b"{not json", "the snapshot cannot be decoded: payload is not valid json"),
        (codec.encode([1, 2]), "the snapshot holds a list, not durable state"),
        (codec.encode({1: 2}, "cbor"), "the snapshot names a durable value 1, not a string"),
        (
            codec.encode({"notes": [b"\x00"]}, "messagepack"),
            r"the snapshot cannot be restored: durable state\['notes'\]\[0\] is a bytes",
        ),
    ],
)
def test_bytes_that_are_no_snapshot_are_refused_and_the_state_kept(
    tmp_path: Path, state: bytes, why: str
) -> None:
    with MockHost.load(_module(tmp_path, NOTES)) as host:
        host.deliver({"note": "kept"})
        with pytest.raises(HandlerError, match=why) as info:
            host.restore(state)
        assert isinstance(info.value.__cause__, sdk.StateError)
        assert host.deliver("show")["notes"] == ["kept"]


def test_unencodable_state_is_refused_naming_where_it_is(tmp_path: Path) -> None:
    with MockHost.load(_module(tmp_path, NOTES)) as host:
        host.deliver({"note": "a"})
        host.deliver("poison")
        with pytest.raises(sdk.StateError, match=r"durable state\['notes'\]\[1\] is a set") as info:
            host.snapshot()
        assert "register @on_snapshot and @on_restore" in str(info.value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"raw", r"state\['x'\] is a bytes"),
        ((1, 2), r"state\['x'\] is a tuple"),
        ({"k": {3: "v"}}, r"state\['x'\]\['k'\] has the key 3 \(int\), which JSON would turn"),
        ([[object()]], r"state\['x'\]\[0\]\[0\] is a object"),
    ],
)
def test_unencodable_values_are_refused(value: object, why: str) -> None:
    handlers = sdk.Handlers()
    with MockHost(handlers) as host:
        state = sdk.durable(x=None)
        state["x"] = value
        with pytest.raises(sdk.StateError, match=why):
            host.snapshot()
        with pytest.raises(sdk.StateError, match=why.replace(r"state\['x'\]", r"state\['y'\]")):
            sdk.durable(y=value)  # refused when registered, too
        assert "y" not in state


def test_state_nested_too_deep_or_containing_itself_is_refused() -> None:
    with MockHost(sdk.Handlers()) as host:
        loop: list[object] = []
        loop.append(loop)
        state = sdk.durable(loop=None)
        state["loop"] = loop
        with pytest.raises(sdk.StateError, match="nested deeper than 400 levels"):
            host.snapshot()
        deep: list[object] = []
        for _ in range(398):
            deep = [deep]
        state["loop"] = deep  # 400 levels with the state itself: fits
        restored = host.snapshot()
        host.restore(restored)
        assert host.snapshot() == restored


def test_durable_adds_names_and_refuses_one_registered_twice() -> None:
    with MockHost(sdk.Handlers()) as host:
        first = sdk.durable(a=1)
        second = sdk.durable(b=[2])
        assert first is second and first == {"a": 1, "b": [2]}
        assert repr(first) == "Durable({'a': 1, 'b': [2]})"
        with pytest.raises(sdk.StateError, match="durable state 'a' is already registered"):
            sdk.durable(a=3, c=4)
        assert first == {"a": 1, "b": [2]}
        assert host.snapshot() == codec.encode({"a": 1, "b": [2]})


def test_nothing_registered_snapshots_as_nothing() -> None:
    with MockHost(sdk.Handlers()) as host:
        assert host.snapshot() == b""
        host.restore(b"")
        with pytest.raises(HandlerError, match=r"registered no durable state .* of 3 bytes"):
            host.restore(b"abc")


CUSTOM = """\
from airssys.sdk import Reject, durable, on_message, on_restore, on_snapshot

state = durable(count=0)
seen = set()


@on_message
def handle(message):
    seen.add(message.value)
    state["count"] += 1
    return sorted(seen)


@on_snapshot
def save():
    return "\\n".join(sorted(seen)).encode()


@on_restore
def load(data):
    if data.startswith(b"!"):
        raise Reject("a state cannot start with '!'")
    if data == b"crash":
        raise RuntimeError("restore crashed")
    seen.clear()
    seen.update(data.decode().split("\\n") if data else ())
"""


def test_decorators_override_the_registered_state(tmp_path: Path) -> None:
    app = _module(tmp_path, CUSTOM)
    with MockHost.load(app) as host:
        host.deliver("b")
        host.deliver("a")
        state = host.snapshot()
    assert state == b"a\nb"  # the decorators' bytes, not the durable() count
    with MockHost.load(app) as fresh:
        fresh.restore(state)
        assert fresh.deliver("c") == ["a", "b", "c"]
        with pytest.raises(HandlerError, match="a state cannot start with '!'"):
            fresh.restore(b"!x")
        with pytest.raises(RuntimeError, match="restore crashed"):
            fresh.restore(b"crash")  # not a Reject: a crash, as in a component
        fresh.restore(b"")
        assert fresh.snapshot() == b""


def test_on_snapshot_must_return_bytes() -> None:
    with MockHost(sdk.Handlers()) as host:
        sdk.on_snapshot(lambda: "text")  # type: ignore[arg-type, return-value]
        sdk.on_restore(lambda data: None)
        with pytest.raises(sdk.StateError, match="@on_snapshot must return bytes, not str"):
            host.snapshot()
        sdk.on_snapshot(lambda: bytearray(b"ok"))  # type: ignore[arg-type, return-value]
        assert host.snapshot() == b"ok"


@pytest.mark.parametrize(
    ("decorator", "have", "missing"),
    [("on_snapshot", "@on_snapshot", "@on_restore"), ("on_restore", "@on_restore", "@on_snapshot")],
)
def test_one_decorator_without_the_other_is_refused_at_load(
    tmp_path: Path, decorator: str, have: str, missing: str
) -> None:
    arg = "" if decorator == "on_snapshot" else "data"
    source = f"from airssys.sdk import {decorator}\n\n@{decorator}\ndef f({arg}):\n    return b''\n"
    with pytest.raises(sdk.StateError, match=f"registered {have} without {missing}: register both"):
        MockHost.load(_module(tmp_path, source))
    handlers = sdk.Handlers()
    with MockHost(handlers) as host:  # built by hand: refused when used
        getattr(sdk, decorator)(lambda *_: b"")
        with pytest.raises(sdk.StateError, match="register both"):
            host.snapshot()
        with pytest.raises(HandlerError, match="register both"):
            host.restore(b"")
        with pytest.raises(sdk.StateError, match="register both"):
            sdk.check_handlers()


def test_snapshot_and_restore_need_the_with_block() -> None:
    host = MockHost.load(COUNTER)
    with pytest.raises(RuntimeError, match="with"):
        host.snapshot()
    with pytest.raises(RuntimeError, match="with"):
        host.restore(b"")
