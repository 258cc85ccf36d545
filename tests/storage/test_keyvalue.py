"""The component-facing service: grants, isolation, shared buckets, quotas, buckets."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airssys.errors import CapabilityDenied, InvalidName, QuotaExceeded
from airssys.security import Grants, Policy
from airssys.storage import (
    BUCKET_RULE,
    MAX_KEY_BYTES,
    Backend,
    Bucket,
    InvalidKey,
    KeyResponse,
    KeyValue,
    NotACounter,
    Usage,
    check_bucket_name,
)

from .conftest import Opener


def service(
    backend: Backend,
    component: str = "/app/a",
    buckets: tuple[str, ...] = ("default",),
    shared: frozenset[str] = frozenset(),
    **limits: Any,
) -> KeyValue:
    checks = Grants(buckets=buckets).compile(component, shared_buckets=shared)
    return KeyValue(backend, checks=checks, shared=shared, **limits)


# --- grants and names -----------------------------------------------------------------------


def test_an_ungranted_bucket_is_denied(backend: Backend) -> None:
    denials: list[tuple[str, str, str]] = []
    checks = Grants(buckets=("default",)).compile(
        "/app/a", on_deny=lambda *args: denials.append(args)
    )
    kv = KeyValue(backend, checks=checks)
    kv.open("default").set("k", b"v")
    with pytest.raises(CapabilityDenied, match="capability denied: storage secrets") as caught:
        kv.open("secrets")
    assert caught.value.kind == "storage" and caught.value.component == "/app/a"
    assert isinstance(caught.value, PermissionError)
    assert denials == [("storage", "secrets", str(caught.value))]
    assert backend.namespaces() == ["/app/a/default"]


def test_no_grant_no_bucket(backend: Backend) -> None:
    kv = KeyValue(backend, checks=Grants.none().compile("/app/a"))
    with pytest.raises(CapabilityDenied, match="granted: nothing"):
        kv.open("default")


def test_a_star_grant_opens_own_buckets_but_not_shared_ones(backend: Backend) -> None:
    kv = service(backend, buckets=("*",), shared=frozenset({"common"}))
    kv.open("anything").set("k", b"v")
    with pytest.raises(CapabilityDenied):
        kv.open("common")


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "/", "tab\there", "nul\x00", "del\x7f", "c1\x85", "x" * 256, "lone\ud800"],
)
def test_bucket_names_follow_the_rule(backend: Backend, name: str) -> None:
    kv = service(backend, buckets=("*",))
    with pytest.raises(InvalidName) as caught:
        kv.open(name)
    assert BUCKET_RULE in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_bucket_name_rule_accepts_what_it_says() -> None:
    assert check_bucket_name("x" * 255) == "x" * 255
    assert check_bucket_name("Ünïcode names.and spaces") == "Ünïcode names.and spaces"
    with pytest.raises(InvalidName, match="must be a string"):
        check_bucket_name(b"default")


def test_component_identity_is_checked(backend: Backend) -> None:
    checks = Grants(buckets=("default",)).compile("/app/a")
    with pytest.raises(InvalidName, match="'shared'"):
        KeyValue(backend, checks=checks, component="shared")
    with pytest.raises(InvalidName, match="control character"):
        KeyValue(backend, checks=checks, component="/app/\x00")
    with pytest.raises(InvalidName):
        KeyValue(backend, checks=checks, component="")
    assert KeyValue(backend, checks=checks).component == "/app/a"


# --- isolation ---------------------------------------------------------------------------------


def test_two_components_each_opening_default_see_their_own_data(backend: Backend) -> None:
    a = service(backend, "/app/a").open("default")
    b = service(backend, "/app/b").open("default")
    a.set("k", b"from a")
    assert b.get("k") is None
    b.set("k", b"from b")
    assert a.get("k") == b"from a"
    assert b.get("k") == b"from b"
    assert a.list_keys().keys == ["k"] and b.list_keys().keys == ["k"]
    assert a.namespace == "/app/a/default" and b.namespace == "/app/b/default"
    a.delete("k")
    assert b.get("k") == b"from b"


def test_a_parent_and_its_child_do_not_share(backend: Backend) -> None:
    parent = service(backend, "/app", buckets=("*",))
    child = service(backend, "/app/a", buckets=("*",))
    parent.open("a").set("k", b"parent's bucket named a")  # namespace /app/a
    child.open("default").set("k", b"child")  # namespace /app/a/default
    assert parent.open("a").list_keys().keys == ["k"]
    assert child.open("default").get("k") == b"child"
    assert parent.usage() == Usage(len(b"k") + 23, 1)
    assert child.usage() == Usage(len(b"k") + 5, 1)


def test_shared_buckets_are_shared(backend: Backend) -> None:
    shared = frozenset({"common"})
    a = service(backend, "/app/a", buckets=("common", "default"), shared=shared)
    b = service(backend, "/app/b", buckets=("common",), shared=shared)
    a.open("common").set("k", b"from a")
    assert b.open("common").get("k") == b"from a"
    assert b.open("common").namespace == "shared/common"
    assert b.open("common").shared
    a.open("default").set("k", b"mine")
    with pytest.raises(CapabilityDenied):
        b.open("default")
    # a component granted the name but not sharing it would see its own bucket
    c = service(backend, "/app/c", buckets=("common",))
    assert c.open("common").get("k") is None


def test_data_outlives_the_service_object(backend: Backend) -> None:
    """An actor restart builds a new KeyValue for the same address: same data."""
    service(backend, "/app/a").open("default").set("k", b"v")
    again = service(backend, "/app/a")
    assert again.open("default").get("k") == b"v"


def test_data_outlives_the_process(reopen: Opener) -> None:
    first = reopen()
    service(first, "/app/a").open("default").set_many({"a": b"1", "b": b"2"})
    first.close()
    second = reopen()
    try:
        bucket = service(second, "/app/a").open("default")
        assert bucket.get_many(["a", "b"]) == [b"1", b"2"]
        assert service(second, "/app/b").open("default").get("a") is None
    finally:
        second.close()


# --- bucket operations --------------------------------------------------------------------------


def test_bucket_operations(backend: Backend) -> None:
    bucket = service(backend).open("default")
    assert isinstance(bucket, Bucket)
    bucket.set("k", b"v")
    assert bucket.get("k") == b"v" and bucket.exists("k")
    assert bucket.delete("k") and not bucket.delete("k")
    assert bucket.get("k") is None and not bucket.exists("k")
    assert bucket.increment("n", 2) == 2
    assert bucket.increment("n", -5) == -3
    assert bucket.cas("c", None, b"1")
    assert not bucket.cas("c", None, b"2")
    assert bucket.cas("c", b"1", b"2")
    assert bucket.get("c") == b"2"
    bucket.set_many({"x": b"1", "y": b"2"})
    bucket.set_many([("z", b"3")])
    assert bucket.get_many(["z", "nope", "x"]) == [b"3", None, b"1"]
    assert bucket.delete_many(["x", "y", "nope"]) == 2
    assert bucket.list_keys() == KeyResponse(["c", "n", "z"], None)
    assert bucket.usage() == Usage(len("c2") + len("n-3") + len("z3"), 3)
    bucket.set("k", b"not a number")
    with pytest.raises(NotACounter):
        bucket.increment("k", 1)


def test_text_keys_page_and_scan(backend: Backend) -> None:
    bucket = service(backend).open("default")
    names = [f"user:{i:04d}" for i in range(1500)] + [f"order:{i}" for i in range(10)]
    bucket.set_many((name, b"") for name in names)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = bucket.scan("user:", cursor, limit=128)
        seen += page.keys
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == sorted(n for n in names if n.startswith("user:"))
    everything: list[str] = []
    cursor = None
    while True:
        page = bucket.list_keys(cursor, limit=333)
        everything += page.keys
        if page.cursor is None:
            break
        cursor = page.cursor
    assert everything == sorted(names)
    assert bucket.scan("order:", limit=3) == KeyResponse(
        ["order:0", "order:1", "order:2"], "order:2"
    )


def test_unicode_keys_sort_by_code_point(backend: Backend) -> None:
    bucket = service(backend).open("default")
    keys = ["é", "z", "a", "€", "😀", "ß"]
    bucket.set_many((k, k.encode()) for k in keys)
    assert bucket.list_keys().keys == sorted(keys)
    assert bucket.list_keys("z").keys == sorted(k for k in keys if k > "z")
    assert bucket.get("😀") == "😀".encode()


def test_keys_follow_their_rule(backend: Backend) -> None:
    bucket = service(backend).open("default")
    bucket.set("k" * MAX_KEY_BYTES, b"")
    with pytest.raises(InvalidKey, match="at most"):
        bucket.set("é" * (MAX_KEY_BYTES // 2 + 1), b"")  # 2 bytes each in UTF-8
    with pytest.raises(InvalidKey, match="valid text"):
        bucket.get("lone\udc00")
    with pytest.raises(InvalidKey, match="must be a string"):
        bucket.get(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        bucket.list_keys("x" * (MAX_KEY_BYTES + 1))
    with pytest.raises(InvalidKey):
        bucket.set_many([("ok", b""), ("bad\ud800", b"")])
    assert not bucket.exists("ok")


# --- quotas -------------------------------------------------------------------------------------


def test_the_quota_spans_a_components_buckets(backend: Backend) -> None:
    kv = service(backend, buckets=("one", "two"), quota=100, max_keys=5)
    kv.open("one").set("k", b"x" * 59)  # 60 bytes
    kv.open("two").set("k", b"x" * 39)  # 100: the quota, reached
    with pytest.raises(QuotaExceeded) as caught:
        kv.open("two").set("j", b"")
    err = caught.value
    assert err.quota == "bytes" and err.limit == 100 and err.usage == 100 and err.size == 1
    assert err.scope == "component '/app/a'"
    text = str(err)
    assert "may hold 100 bytes" in text and "holds 100" in text and "write of 1 bytes" in text
    assert kv.usage() == Usage(100, 2)
    assert not kv.open("two").exists("j")
    # another component has its own quota
    service(backend, "/app/b", buckets=("one",), quota=100).open("one").set("k", b"x" * 99)


def test_the_keys_quota_spans_buckets_too(backend: Backend) -> None:
    kv = service(backend, buckets=("one", "two"), max_keys=3)
    kv.open("one").set_many({"a": b"", "b": b""})
    kv.open("two").set("a", b"")
    with pytest.raises(QuotaExceeded, match="may hold 3 keys") as caught:
        kv.open("two").increment("n", 1)
    assert caught.value.quota == "keys" and caught.value.usage == 3
    kv.open("two").set("a", b"replacing is no new key")
    kv.open("one").delete("a")
    kv.open("two").increment("n", 1)  # room again


def test_a_batch_past_the_quota_writes_nothing(backend: Backend) -> None:
    kv = service(backend, quota=1000, max_keys=100)
    bucket = kv.open("default")
    bucket.set_many({f"k{i}": b"v" for i in range(10)})
    before = bucket.list_keys().keys
    batch = {f"new{i}": b"x" * 100 for i in range(10)} | {"k0": b"changed"}
    with pytest.raises(QuotaExceeded) as caught:
        bucket.set_many(batch)
    assert caught.value.size == sum(len(k) + len(v) for k, v in batch.items())
    assert bucket.list_keys().keys == before
    assert bucket.get("k0") == b"v"
    assert kv.usage() == Usage(sum(len(f"k{i}v") for i in range(10)), 10)


def test_a_shared_bucket_is_bounded_alone_and_not_charged_to_the_writer(
    backend: Backend,
) -> None:
    shared = frozenset({"common"})
    a = service(backend, "/app/a", ("common", "default"), shared, quota=50)
    b = service(backend, "/app/b", ("common",), shared, quota=1000)
    a.open("default").set("k", b"x" * 49)  # a's own quota: full
    a.open("common").set("k", b"x" * 40)  # the shared bucket: 41 of a's 50
    assert a.usage() == Usage(50, 1)
    with pytest.raises(QuotaExceeded, match="shared bucket 'common' may hold 50 bytes"):
        a.open("common").set("j", b"x" * 10)
    b.open("common").set("j", b"x" * 10)  # b may grow it further, up to its 1000
    assert b.usage() == Usage(0, 0)
    assert a.open("common").get("j") == b"x" * 10


def test_from_policy_takes_limits_and_shared_buckets(backend: Backend) -> None:
    policy = Policy(shared_buckets=frozenset({"common"}))
    grants = Grants(buckets=("default", "common"), quota=64, keys=2)
    checks = policy.compile(grants, "trusted", component="/app/a")
    kv = KeyValue.from_policy(backend, checks, policy, "trusted")
    assert (kv.quota, kv.max_keys) == (64, 2)
    assert kv.open("common").namespace == "shared/common"
    with pytest.raises(QuotaExceeded):
        kv.open("default").set("k", b"x" * 64)
    unknown = policy.compile(Grants(buckets=("default",)), "unknown", component="/app/b")
    defaults = KeyValue.from_policy(backend, unknown, policy, "unknown")
    assert (defaults.quota, defaults.max_keys) == (10 << 20, 10_000)
    assert (defaults.quota, defaults.max_keys) == policy.storage_limits(Grants(), "unknown")


def test_concurrent_increments_through_buckets(backend: Backend) -> None:
    kv = service(backend, quota=10_000, max_keys=10)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            bucket = kv.open("default")
            for _ in range(200):
                bucket.increment("hits", 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert kv.open("default").get("hits") == b"1600"


def test_repr_names_the_component() -> None:
    from airssys.storage import MemoryBackend

    kv = service(MemoryBackend(), "/app/a", quota=5)
    assert "/app/a" in repr(kv)
    assert "'default'" in repr(kv.open("default"))
