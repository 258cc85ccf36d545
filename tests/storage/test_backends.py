"""Every Backend operation, on every backend (memory, sqlite, lmdb)."""

from __future__ import annotations

import string
import threading
from collections.abc import Callable

import pytest

from airssys.errors import QuotaExceeded, StorageError
from airssys.storage import (
    MAX_KEY_BYTES,
    Backend,
    InvalidKey,
    NotACounter,
    Quota,
    Usage,
)

from .conftest import Opener

NS = "/app/worker/default"


def test_every_backend_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)


# --- store ------------------------------------------------------------------------------


def test_get_set_delete_exists(backend: Backend) -> None:
    assert backend.get(NS, b"k") is None
    assert not backend.exists(NS, b"k")
    backend.set(NS, b"k", b"v1")
    assert backend.get(NS, b"k") == b"v1"
    assert backend.exists(NS, b"k")
    backend.set(NS, b"k", b"v2")  # replaces
    assert backend.get(NS, b"k") == b"v2"
    assert backend.delete(NS, b"k") is True
    assert backend.delete(NS, b"k") is False  # absent: nothing to do
    assert backend.get(NS, b"k") is None
    assert not backend.exists(NS, b"k")


def test_empty_keys_and_values_and_binary_bytes(backend: Backend) -> None:
    backend.set(NS, b"", b"")
    backend.set(NS, b"\x00\xff", bytes(range(256)))
    assert backend.get(NS, b"") == b""
    assert backend.exists(NS, b"")
    assert backend.get(NS, b"\x00\xff") == bytes(range(256))
    assert backend.usage(NS) == Usage(2 + 256, 2)


def test_bytes_like_keys_and_values_are_taken(backend: Backend) -> None:
    backend.set(NS, bytearray(b"k"), memoryview(b"v"))  # type: ignore[arg-type]
    assert backend.get(NS, b"k") == b"v"
    assert type(backend.get(NS, b"k")) is bytes


def test_a_large_value(backend: Backend) -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    backend.set(NS, b"big", value)
    assert backend.get(NS, b"big") == value


def test_key_limits(backend: Backend) -> None:
    longest = b"k" * MAX_KEY_BYTES
    backend.set(NS, longest, b"v")
    assert backend.get(NS, longest) == b"v"
    with pytest.raises(InvalidKey, match=f"at most {MAX_KEY_BYTES} bytes"):
        backend.set(NS, longest + b"k", b"v")
    with pytest.raises(InvalidKey, match="must be bytes"):
        backend.get(NS, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes"):
        backend.set(NS, b"k", "text")  # type: ignore[arg-type]
    assert isinstance(InvalidKey("x"), ValueError)


def test_namespaces_are_separate(backend: Backend) -> None:
    backend.set("a/x", b"k", b"1")
    backend.set("b/x", b"k", b"2")
    assert backend.get("a/x", b"k") == b"1"
    assert backend.get("b/x", b"k") == b"2"
    assert backend.get("c/x", b"k") is None
    backend.delete("a/x", b"k")
    assert backend.get("b/x", b"k") == b"2"


# --- listing ------------------------------------------------------------------------------


def test_list_keys_pages_in_byte_order(backend: Backend) -> None:
    keys = [f"key-{i:05d}".encode() for i in range(2345)]
    backend.set_many(NS, [(k, b"v") for k in reversed(keys)])
    seen: list[bytes] = []
    cursor: bytes | None = None
    pages = 0
    while True:
        page = backend.list_keys(NS, cursor=cursor, limit=100)
        seen += page.keys
        pages += 1
        if page.cursor is None:
            break
        assert page.cursor == page.keys[-1]
        cursor = page.cursor
    assert seen == keys
    assert pages == 24
    whole = backend.list_keys(NS, limit=10_000)
    assert whole.keys == keys and whole.cursor is None


def test_a_page_that_ends_exactly_at_the_last_key_has_no_cursor(backend: Backend) -> None:
    backend.set_many(NS, [(b"a", b""), (b"b", b"")])
    assert backend.list_keys(NS, limit=2) == ([b"a", b"b"], None)
    assert backend.list_keys(NS, limit=1) == ([b"a"], b"a")
    assert backend.list_keys(NS, cursor=b"a", limit=1) == ([b"b"], None)


def test_list_keys_of_an_empty_or_unknown_namespace(backend: Backend) -> None:
    assert backend.list_keys("nobody/here") == ([], None)


def test_byte_order_is_unsigned(backend: Backend) -> None:
    keys = [b"\xff", b"\x00", b"\x7f", b"\x80", b"a", b"a\x00", b""]
    backend.set_many(NS, [(k, b"") for k in keys])
    assert backend.list_keys(NS).keys == sorted(keys)


def test_a_cursor_may_be_any_bytes_not_only_a_key(backend: Backend) -> None:
    backend.set_many(NS, [(k.encode(), b"") for k in "aceg"])
    assert backend.list_keys(NS, cursor=b"b").keys == [b"c", b"e", b"g"]
    assert backend.list_keys(NS, cursor=b"c").keys == [b"e", b"g"]
    assert backend.list_keys(NS, cursor=b"z").keys == []


def test_prefix_scan_with_a_cursor(backend: Backend) -> None:
    items = [(f"{p}{i:03d}".encode(), b"v") for p in ("a/", "b/", "ba/", "c") for i in range(150)]
    backend.set_many(NS, items)
    got: list[bytes] = []
    cursor: bytes | None = None
    while True:
        page = backend.list_keys(NS, prefix=b"b/", cursor=cursor, limit=40)
        got += page.keys
        if page.cursor is None:
            break
        cursor = page.cursor
    assert got == [f"b/{i:03d}".encode() for i in range(150)]
    assert len(backend.list_keys(NS, prefix=b"b").keys) == 300  # b/ and ba/
    assert backend.list_keys(NS, prefix=b"d").keys == []
    # a cursor before the prefix starts at the prefix; one past it ends the scan
    assert backend.list_keys(NS, prefix=b"c", cursor=b"a", limit=1).keys == [b"c000"]
    assert backend.list_keys(NS, prefix=b"a/", cursor=b"b").keys == []


def test_prefix_scan_at_the_top_of_the_byte_range(backend: Backend) -> None:
    keys = [b"\xfe", b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\x01"]
    backend.set_many(NS, [(k, b"") for k in keys])
    assert backend.list_keys(NS, prefix=b"\xff").keys == keys[1:]
    assert backend.list_keys(NS, prefix=b"\xff\xff").keys == keys[3:]
    assert backend.list_keys(NS, prefix=b"\xfe").keys == [b"\xfe"]


@pytest.mark.parametrize("limit", [0, -1, 10_001, 1.5, True])
def test_list_limits_are_checked(backend: Backend, limit: object) -> None:
    with pytest.raises(ValueError, match="page limit"):
        backend.list_keys(NS, limit=limit)  # type: ignore[arg-type]


# --- atomics -------------------------------------------------------------------------------


def test_increment_creates_adds_and_stores_decimal_text(backend: Backend) -> None:
    assert backend.increment(NS, b"n", 5) == 5
    assert backend.increment(NS, b"n", -12) == -7
    assert backend.get(NS, b"n") == b"-7"
    backend.set(NS, b"m", b"41")  # a counter written by hand counts too
    assert backend.increment(NS, b"m", 1) == 42
    assert backend.increment(NS, b"z", 0) == 0
    assert backend.get(NS, b"z") == b"0"


@pytest.mark.parametrize("value", [b"abc", b"", b"1.5", b" 1", b"1 ", b"+1", b"\x00" * 8, b"--1"])
def test_increment_refuses_a_value_that_is_not_a_number(backend: Backend, value: bytes) -> None:
    backend.set(NS, b"n", value)
    with pytest.raises(NotACounter, match="not a counter") as caught:
        backend.increment(NS, b"n", 1)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, StorageError)
    assert backend.get(NS, b"n") == value  # untouched


def test_increment_stays_within_s64(backend: Backend) -> None:
    top = 2**63 - 1
    assert backend.increment(NS, b"n", top) == top
    with pytest.raises(NotACounter, match="signed 64-bit"):
        backend.increment(NS, b"n", 1)
    assert backend.get(NS, b"n") == str(top).encode()
    assert backend.increment(NS, b"lo", -(2**63)) == -(2**63)
    with pytest.raises(NotACounter):
        backend.increment(NS, b"lo", -1)
    with pytest.raises(ValueError, match="signed 64-bit int"):
        backend.increment(NS, b"n", 2**63)
    with pytest.raises(ValueError, match="signed 64-bit int"):
        backend.increment(NS, b"n", "1")  # type: ignore[arg-type]


def test_cas(backend: Backend) -> None:
    assert backend.cas(NS, b"k", None, b"first") is True  # absent, as expected
    assert backend.cas(NS, b"k", None, b"again") is False  # no longer absent
    assert backend.cas(NS, b"k", b"wrong", b"x") is False
    assert backend.get(NS, b"k") == b"first"
    assert backend.cas(NS, b"k", b"first", b"second") is True
    assert backend.get(NS, b"k") == b"second"
    assert backend.cas(NS, b"gone", b"anything", b"x") is False
    assert not backend.exists(NS, b"gone")
    assert backend.cas(NS, b"empty", None, b"") is True
    assert backend.cas(NS, b"empty", None, b"x") is False  # b"" is a value, not absence
    assert backend.cas(NS, b"empty", b"", b"x") is True


def _hammer(threads: int, work: Callable[[], None]) -> None:
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


def test_concurrent_increments_lose_no_update(backend: Backend) -> None:
    def work() -> None:
        for _ in range(250):
            backend.increment(NS, b"hits", 1)

    _hammer(8, work)
    assert backend.get(NS, b"hits") == b"2000"


def test_concurrent_cas_loops_lose_no_update(backend: Backend) -> None:
    backend.set(NS, b"n", b"0")

    def work() -> None:
        done = 0
        while done < 100:
            current = backend.get(NS, b"n")
            assert current is not None
            if backend.cas(NS, b"n", current, str(int(current) + 1).encode()):
                done += 1

    _hammer(6, work)
    assert backend.get(NS, b"n") == b"600"


def test_concurrent_writers_and_readers_keep_usage_exact(backend: Backend) -> None:
    def work() -> None:
        name = threading.current_thread().name.encode()
        for i in range(100):
            backend.set(NS, name + b"%d" % i, b"x" * (i % 7))
            if i % 3 == 0:
                backend.delete(NS, name + b"%d" % (i // 2))
            backend.list_keys(NS, prefix=name, limit=10)

    _hammer(6, work)
    keys = backend.list_keys(NS, limit=10_000).keys
    values = backend.get_many(NS, keys)
    expected = sum(len(k) + len(v) for k, v in zip(keys, values, strict=True) if v is not None)
    assert backend.usage(NS) == Usage(expected, len(keys))


# --- batch --------------------------------------------------------------------------------


def test_get_many_in_order_with_gaps_and_repeats(backend: Backend) -> None:
    backend.set_many(NS, [(b"a", b"1"), (b"c", b"3")])
    assert backend.get_many(NS, [b"c", b"b", b"a", b"c"]) == [b"3", None, b"1", b"3"]
    assert backend.get_many(NS, []) == []
    assert backend.get_many("nobody/here", [b"a"]) == [None]


def test_get_many_over_many_keys(backend: Backend) -> None:
    keys = [b"%d" % i for i in range(1234)]
    backend.set_many(NS, [(k, k) for k in keys])
    assert backend.get_many(NS, keys) == keys


def test_set_many_last_repeat_wins_and_counts_once(backend: Backend) -> None:
    backend.set_many(NS, [(b"k", b"1"), (b"k", b"22"), (b"j", b"3")])
    assert backend.get(NS, b"k") == b"22"
    assert backend.usage(NS) == Usage(len(b"k22") + len(b"j3"), 2)
    backend.set_many(NS, [])
    backend.set_many(NS, {b"x": b"y"}.items())
    assert backend.get(NS, b"x") == b"y"


def test_set_many_is_all_or_nothing_on_a_bad_item(backend: Backend) -> None:
    with pytest.raises(InvalidKey):
        backend.set_many(NS, [(b"ok", b"1"), (b"k" * (MAX_KEY_BYTES + 1), b"2")])
    assert backend.get(NS, b"ok") is None
    assert backend.usage(NS) == Usage(0, 0)


def test_delete_many(backend: Backend) -> None:
    backend.set_many(NS, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    assert backend.delete_many(NS, [b"a", b"zz", b"c", b"a"]) == 2
    assert backend.list_keys(NS).keys == [b"b"]
    assert backend.delete_many(NS, []) == 0
    assert backend.delete_many("nobody/here", [b"a"]) == 0


# --- usage, namespaces, drop ------------------------------------------------------------------


def test_usage_counts_keys_and_values(backend: Backend) -> None:
    assert backend.usage(NS) == Usage(0, 0)
    backend.set(NS, b"ab", b"cdef")
    assert backend.usage(NS) == Usage(6, 1)
    backend.set(NS, b"ab", b"c")  # replace: the difference
    assert backend.usage(NS) == Usage(3, 1)
    backend.increment(NS, b"n", 100)
    assert backend.usage(NS) == Usage(3 + 1 + 3, 2)
    backend.cas(NS, b"n", b"100", b"1")
    assert backend.usage(NS) == Usage(3 + 2, 2)
    backend.delete(NS, b"ab")
    assert backend.usage(NS) == Usage(2, 1)
    backend.delete_many(NS, [b"n"])
    assert backend.usage(NS) == Usage(0, 0)


def test_group_usage_sums_the_namespaces_of_one_parent(backend: Backend) -> None:
    backend.set("/app/a/default", b"k", b"12345")
    backend.set("/app/a/cache", b"kk", b"1")
    backend.set("/app/a/child/default", b"k", b"1234567890")  # a child: another parent
    backend.set("/app/b/default", b"k", b"1")
    assert backend.group_usage("/app/a") == Usage(6 + 3, 2)
    assert backend.group_usage("/app/a/child") == Usage(11, 1)
    assert backend.group_usage("/app") == Usage(0, 0)
    assert backend.group_usage("nobody") == Usage(0, 0)
    backend.drop("/app/a/cache")
    assert backend.group_usage("/app/a") == Usage(6, 1)


def test_namespaces_lists_those_holding_keys(backend: Backend) -> None:
    assert backend.namespaces() == []
    backend.set("b/x", b"k", b"v")
    backend.set("a/x", b"k", b"v")
    backend.set("c/x", b"k", b"v")
    backend.delete("c/x", b"k")
    assert backend.namespaces() == ["a/x", "b/x"]


def test_drop_removes_a_namespace_only(backend: Backend) -> None:
    backend.set_many("/c/a", [(b"%d" % i, b"v") for i in range(300)])
    backend.set("/c/b", b"k", b"v")
    assert backend.drop("/c/a") == Usage(300 * 1 + sum(len(b"%d" % i) for i in range(300)), 300)
    assert backend.list_keys("/c/a").keys == []
    assert backend.usage("/c/a") == Usage(0, 0)
    assert backend.get("/c/b", b"k") == b"v"
    assert backend.namespaces() == ["/c/b"]
    assert backend.drop("/c/a") == Usage(0, 0)
    backend.set("/c/a", b"again", b"v")  # a dropped namespace can be used again
    assert backend.list_keys("/c/a").keys == [b"again"]
    assert backend.group_usage("/c") == Usage(len(b"againv") + len(b"kv"), 2)


def test_unicode_namespaces(backend: Backend) -> None:
    backend.set("/app/wörker/défault", b"k", b"v")
    assert backend.get("/app/wörker/défault", b"k") == b"v"
    assert backend.group_usage("/app/wörker") == Usage(2, 1)
    assert backend.namespaces() == ["/app/wörker/défault"]


# --- quotas at the backend ------------------------------------------------------------------


def test_a_group_quota_refuses_and_writes_nothing(backend: Backend) -> None:
    quota = Quota(max_bytes=20, max_keys=3, label="component '/c'")
    backend.set("/c/a", b"k1", b"x" * 8, quota=quota)  # 10 bytes
    backend.set("/c/b", b"k2", b"x" * 8, quota=quota)  # 20 bytes: at the limit
    with pytest.raises(QuotaExceeded) as caught:
        backend.set("/c/b", b"k3", b"x", quota=quota)
    err = caught.value
    assert (err.quota, err.limit, err.usage, err.size) == ("bytes", 20, 20, 3)
    assert "component '/c' may hold 20 bytes" in str(err)
    assert "holds 20" in str(err) and "write of 3 bytes" in str(err)
    assert backend.get("/c/b", b"k3") is None
    assert backend.group_usage("/c") == Usage(20, 2)
    backend.set("/other/a", b"k3", b"x", quota=quota)  # another group


def test_the_keys_quota(backend: Backend) -> None:
    quota = Quota(max_keys=2)
    backend.set_many(NS, [(b"a", b"1"), (b"b", b"")], quota=quota)
    with pytest.raises(QuotaExceeded, match="may hold 2 keys") as caught:
        backend.increment(NS, b"c", 1, quota=quota)
    assert caught.value.quota == "keys"
    assert caught.value.usage == 2
    assert not backend.exists(NS, b"c")
    assert backend.increment(NS, b"a", 1, quota=quota) == 2  # no new key: fine
    backend.set(NS, b"b", b"x" * 100, quota=quota)  # no bytes quota


def test_shrinking_writes_pass_over_a_lowered_quota(backend: Backend) -> None:
    backend.set(NS, b"k", b"x" * 100)
    tight = Quota(max_bytes=10, max_keys=1)
    backend.set(NS, b"k", b"x" * 50, quota=tight)  # smaller: allowed though over
    with pytest.raises(QuotaExceeded):
        backend.set(NS, b"k", b"x" * 51, quota=tight)
    assert backend.cas(NS, b"k", b"x" * 50, b"x", quota=tight)
    assert backend.get(NS, b"k") == b"x"


def test_a_namespace_quota_counts_that_namespace_alone(backend: Backend) -> None:
    quota = Quota(max_bytes=10, scope="namespace")
    backend.set("shared/a", b"k", b"x" * 8, quota=quota)
    backend.set("shared/b", b"k", b"x" * 8, quota=quota)  # another namespace: own count
    with pytest.raises(QuotaExceeded, match="namespace 'shared/a'"):
        backend.set("shared/a", b"jj", b"", quota=quota)
    with pytest.raises(QuotaExceeded):
        backend.set("fresh/ns", b"k", b"x" * 10, quota=quota)
    assert backend.namespaces() == ["shared/a", "shared/b"]


def test_set_many_past_the_quota_writes_none_of_it(backend: Backend) -> None:
    quota = Quota(max_bytes=100, max_keys=10)
    backend.set(NS, b"keep", b"old", quota=quota)
    batch = [(b"keep", b"new"), *[(b"k%d" % i, b"x" * 20) for i in range(5)]]
    with pytest.raises(QuotaExceeded) as caught:
        backend.set_many(NS, batch, quota=quota)
    assert caught.value.size == sum(len(k) + len(v) for k, v in batch)
    assert backend.get(NS, b"keep") == b"old"
    assert backend.list_keys(NS).keys == [b"keep"]
    assert backend.usage(NS) == Usage(7, 1)
    with pytest.raises(QuotaExceeded, match="keys"):
        backend.set_many(NS, [(b"n%d" % i, b"") for i in range(10)], quota=quota)
    assert backend.list_keys(NS).keys == [b"keep"]


def test_increment_and_cas_past_the_quota_write_nothing(backend: Backend) -> None:
    quota = Quota(max_bytes=5)
    backend.set(NS, b"n", b"9", quota=quota)  # 2 bytes
    with pytest.raises(QuotaExceeded):
        backend.increment(NS, b"n", 999_990, quota=quota)  # 999999: 7 bytes
    assert backend.get(NS, b"n") == b"9"
    with pytest.raises(QuotaExceeded):
        backend.cas(NS, b"n", b"9", b"12345", quota=quota)
    assert backend.get(NS, b"n") == b"9"
    assert backend.cas(NS, b"n", b"9", b"123", quota=quota)


def test_unlimited_quota_is_no_limit(backend: Backend) -> None:
    backend.set(NS, b"k", b"x" * 10_000, quota=Quota())
    assert backend.usage(NS).bytes == 10_001


def test_quota_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Quota(max_bytes=-1)
    with pytest.raises(ValueError, match="scope"):
        Quota(scope="everything")  # type: ignore[arg-type]


# --- lifecycle -----------------------------------------------------------------------------


def test_closed_backends_refuse_calls(backend: Backend) -> None:
    backend.set(NS, b"k", b"v")
    backend.close()
    backend.close()  # idempotent
    for call in (
        lambda: backend.get(NS, b"k"),
        lambda: backend.set(NS, b"k", b"v"),
        lambda: backend.list_keys(NS),
        lambda: backend.usage(NS),
        lambda: backend.namespaces(),
        lambda: backend.get("unknown/ns", b"k"),
    ):
        with pytest.raises(StorageError, match="closed"):
            call()


def test_data_survives_closing_and_reopening(reopen: Opener) -> None:
    first = reopen()
    first.set_many(NS, [(b"a", b"1"), (b"b", b"2")])
    first.increment(NS, b"n", 41)
    first.set("/other/x", b"k", b"v")
    first.close()
    second = reopen()
    try:
        assert second.get_many(NS, [b"a", b"b", b"n"]) == [b"1", b"2", b"41"]
        assert second.increment(NS, b"n", 1) == 42
        assert second.usage(NS) == Usage(2 + 2 + 3, 3)
        assert second.group_usage("/app/worker") == Usage(7, 3)
        assert second.namespaces() == ["/app/worker/default", "/other/x"]
        second.drop("/other/x")
    finally:
        second.close()
    third = reopen()
    try:
        assert third.namespaces() == [NS]
        third.set("/new/ns", b"k", b"v")  # ids after a reopen do not collide
        assert third.get(NS, b"a") == b"1"
        assert third.list_keys("/new/ns").keys == [b"k"]
    finally:
        third.close()


# --- a model check: random operations against a dict ------------------------------------------

_OPS = ("set", "delete", "set_many", "delete_many", "increment", "cas")


def test_random_operations_match_a_dict_and_usage_stays_exact(backend: Backend) -> None:
    import random

    rng = random.Random(1234)
    model: dict[tuple[str, bytes], bytes] = {}
    spaces = ["/p/a", "/p/b", "/q/a"]
    alphabet = string.ascii_lowercase[:6].encode()
    for _ in range(1500):
        ns = rng.choice(spaces)
        key = bytes(rng.choices(alphabet, k=rng.randint(0, 2)))
        op = rng.choice(_OPS)
        if op == "set":
            value = bytes(rng.choices(alphabet, k=rng.randint(0, 5)))
            backend.set(ns, key, value)
            model[ns, key] = value
        elif op == "delete":
            assert backend.delete(ns, key) == ((ns, key) in model)
            model.pop((ns, key), None)
        elif op == "set_many":
            items = [(bytes(rng.choices(alphabet, k=2)), b"%d" % rng.randint(0, 99)) for _ in "abc"]
            backend.set_many(ns, items)
            model.update(((ns, k), v) for k, v in items)
        elif op == "delete_many":
            keys = [bytes(rng.choices(alphabet, k=2)) for _ in "ab"]
            expected = len({k for k in keys if (ns, k) in model})
            assert backend.delete_many(ns, keys) == expected
            for k in keys:
                model.pop((ns, k), None)
        elif op == "increment":
            current = model.get((ns, key))
            if current is None or current.isdigit():
                value = str(int(current or b"0") + 3).encode()
                assert backend.increment(ns, key, 3) == int(value)
                model[ns, key] = value
            else:
                with pytest.raises(NotACounter):
                    backend.increment(ns, key, 3)
        else:
            expected_value = model.get((ns, key)) if rng.random() < 0.7 else b"nope"
            swapped = backend.cas(ns, key, expected_value, b"cas")
            assert swapped == (model.get((ns, key)) == expected_value)
            if swapped:
                model[ns, key] = b"cas"
    for ns in spaces:
        mine = {k: v for (n, k), v in model.items() if n == ns}
        listed = backend.list_keys(ns, limit=10_000).keys
        assert listed == sorted(mine)
        assert backend.get_many(ns, listed) == [mine[k] for k in listed]
        assert backend.usage(ns) == Usage(sum(len(k) + len(v) for k, v in mine.items()), len(mine))
    assert backend.group_usage("/p") == Usage(
        backend.usage("/p/a").bytes + backend.usage("/p/b").bytes,
        backend.usage("/p/a").keys + backend.usage("/p/b").keys,
    )
    assert backend.namespaces() == sorted(ns for ns in spaces if backend.usage(ns).keys)
