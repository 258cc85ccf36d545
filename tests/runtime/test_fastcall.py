"""The fast handle-message path against wasmtime-py's public API, byte for byte."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airssys.runtime import ComponentInstance, Limits, Runtime
from tests.conftest import fixture_path

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ComponentInstance, ComponentInstance]]:
    with Runtime(disk_cache=False) as rt:
        echo = rt.load_file(fixture_path("echo"))
        # the bytes are what is compared, not the speed: a mebibyte through the
        # public API takes seconds of wall clock on a loaded machine
        slow = Limits(timeout_ms=120_000)
        with (
            rt.instantiate(echo, limits=slow) as fast,
            rt.instantiate(echo, limits=slow, fast_path=False) as public,
        ):
            assert fast.uses_fast_path and not public.uses_fast_path
            yield fast, public


def both(
    pair: tuple[ComponentInstance, ComponentInstance], sender: str, payload: bytes
) -> tuple[object, object]:
    fast, public = pair
    return fast.handle_message_raw(sender, payload), public.handle_message_raw(sender, payload)


# valid senders (airssys.names): any text but control characters and lone surrogates
_sender_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
senders = st.one_of(
    _sender_text,
    _sender_text.map(lambda s: "err:" + s),
    st.just("none"),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sender=senders, payload=st.binary(max_size=2048))
def test_fast_path_matches_public_api(
    pair: tuple[ComponentInstance, ComponentInstance], sender: str, payload: bytes
) -> None:
    fast, public = both(pair, sender, payload)
    assert fast == public


@pytest.mark.parametrize(
    "payload",
    [b"", bytes(range(256)), bytes(range(256))[::-1] * 64, os.urandom(4096)],
    ids=["empty", "all-bytes", "all-bytes-16k", "random-4k"],
)
def test_fast_path_edge_payloads(
    pair: tuple[ComponentInstance, ComponentInstance], payload: bytes
) -> None:
    fast, public = both(pair, "sender ✓ 送信者 🚀", payload)
    assert fast == public == (True, payload)


def test_fast_path_one_mebibyte(pair: tuple[ComponentInstance, ComponentInstance]) -> None:
    payload = os.urandom(MiB + 7)
    fast, public = both(pair, "big", payload)
    assert fast == public == (True, payload)


def test_fast_path_unicode_error_text(pair: tuple[ComponentInstance, ComponentInstance]) -> None:
    sender = "err:bad ✗ ошибка 错误 🔥"
    assert both(pair, sender, b"x") == ((False, sender), (False, sender))


def test_repeated_calls_alternate_shapes(pair: tuple[ComponentInstance, ComponentInstance]) -> None:
    fast, _ = pair
    for i in range(200):
        n = (i * 37) % 3000
        payload = bytes([i % 256]) * n
        assert fast.handle_message_raw("s", payload) == (True, payload)
        assert fast.handle_message_raw("none", payload) == (True, None)
        assert fast.handle_message_raw(f"err:{i}", payload) == (False, f"err:{i}")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_hundred_thousand_calls_keep_memory_flat(
    pair: tuple[ComponentInstance, ComponentInstance],
) -> None:
    """A leaked 64-byte result list would be 2 KiB a call: 200 MB over 100k calls."""
    fast, _ = pair
    payload = os.urandom(64)
    for _ in range(5_000):
        fast.handle_message_raw("s", payload)
    before = _rss()
    for i in range(100_000):
        fast.handle_message_raw("s" if i % 2 else "err:x", payload)
    grown = _rss() - before
    assert grown < 8 * MiB, f"RSS grew by {grown} bytes over 100k calls"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    correlation_id=_sender_text,
    reply=st.one_of(
        st.binary(max_size=2048),
        st.text(st.characters(codec="utf-8"), max_size=64),
    ),
)
def test_fast_callback_matches_public_api(
    runtime: Runtime, correlation_id: str, reply: bytes | str
) -> None:
    """handle-callback through the fast path: same guest logs, same outcome."""
    from structlog.testing import capture_logs

    component = runtime.load(fixture_path("host"))
    outcomes = []
    for fast in (True, False):
        with runtime.instantiate(component, fast_path=fast) as instance:
            assert (instance._fast_callback is not None) is fast
            with capture_logs() as logs:
                try:
                    instance.handle_callback(
                        correlation_id, reply if isinstance(reply, bytes) else RuntimeError(reply)
                    )
                    outcome: object = "ok"
                except Exception as exc:
                    outcome = (type(exc).__name__, str(exc))
            outcomes.append((outcome, [(e["log_level"], e["event"]) for e in logs]))
    assert outcomes[0] == outcomes[1]
