"""StagedBackend: a durable component's writes wait for their message's commit, and its
reads see them (gets, batches, listings and scans merged with what is stored)."""

from __future__ import annotations

import pytest

from airssys.errors import QuotaExceeded
from airssys.storage import MemoryBackend, Quota, StagedBackend

NS = "/c/default"


def staged(**stored: bytes) -> tuple[MemoryBackend, StagedBackend]:
    backend = MemoryBackend()
    for key, value in stored.items():
        backend.set(NS, key.encode(), value)
    return backend, StagedBackend(lambda: backend)


def test_writes_wait_for_the_commit_and_reads_see_them() -> None:
    backend, stage = staged(a=b"1", b=b"2")
    stage.begin()
    stage.set(NS, b"c", b"3")
    assert stage.delete(NS, b"a") is True
    assert stage.increment(NS, b"n", 5) == 5
    assert stage.increment(NS, b"n", 2) == 7  # reads its own write
    assert stage.cas(NS, b"b", b"2", b"two") is True
    assert stage.cas(NS, b"b", b"2", b"again") is False
    stage.set_many(NS, [(b"d", b"4"), (b"e", b"5")])
    assert stage.delete_many(NS, [b"e", b"zz"]) == 1
    assert stage.get_many(NS, [b"a", b"b", b"c", b"n"]) == [None, b"two", b"3", b"7"]
    assert not stage.exists(NS, b"a") and stage.exists(NS, b"d")
    # nothing is stored yet
    assert backend.get(NS, b"c") is None and backend.get(NS, b"a") == b"1"
    stage.commit()
    assert backend.get(NS, b"a") is None
    assert [backend.get(NS, k) for k in (b"b", b"c", b"d", b"e", b"n")] == [
        b"two",
        b"3",
        b"4",
        None,
        b"7",
    ]


def test_a_discarded_message_leaves_nothing() -> None:
    backend, stage = staged(a=b"1")
    stage.begin()
    for _ in range(100):
        stage.increment(NS, b"n", 1)
    stage.delete(NS, b"a")
    stage.discard()
    assert backend.get(NS, b"n") is None and backend.get(NS, b"a") == b"1"
    stage.set(NS, b"next", b"y")  # the next message's write waits too
    assert backend.get(NS, b"next") is None
    stage.commit()
    assert backend.get(NS, b"next") == b"y"
    stage.set(NS, b"dropped", b"z")
    stage.end()  # forgets what was not committed
    assert backend.get(NS, b"dropped") is None
    stage.set(NS, b"outside", b"x")  # outside a batch: stored at once
    assert backend.get(NS, b"outside") == b"x"


@pytest.mark.parametrize("limit", [1, 2, 3, 100])
def test_listings_merge_staged_keys_in_order_across_pages(limit: int) -> None:
    _, stage = staged(**{f"k{n:02}": b"v" for n in range(0, 20, 2)}, other=b"o")
    stage.begin()
    for n in range(1, 20, 4):
        stage.set(NS, f"k{n:02}".encode(), b"new")
    stage.delete(NS, b"k04")
    stage.delete(NS, b"k10")
    expected = sorted(
        {f"k{n:02}" for n in range(0, 20, 2)} - {"k04", "k10"}
        | {f"k{n:02}" for n in range(1, 20, 4)}
    )
    seen: list[bytes] = []
    cursor = None
    while True:
        page = stage.list_keys(NS, prefix=b"k", cursor=cursor, limit=limit)
        assert len(page.keys) <= limit
        seen += page.keys
        if page.cursor is None:
            break
        cursor = page.cursor
    assert [k.decode() for k in seen] == expected
    everything = stage.list_keys(NS, limit=100).keys
    assert everything == sorted([k.encode() for k in expected] + [b"other"])


def test_a_quota_counts_what_the_message_staged_before() -> None:
    backend, stage = staged()
    quota = Quota(max_bytes=100, scope="namespace")
    stage.begin()
    stage.set(NS, b"a", b"x" * 60, quota=quota)
    with pytest.raises(QuotaExceeded):
        stage.set(NS, b"b", b"y" * 60, quota=quota)  # 61 + 61 > 100 with the staged one
    with pytest.raises(QuotaExceeded):
        stage.set_many(NS, [(b"c", b"1"), (b"d", b"z" * 90)], quota=quota)
    assert stage.get(NS, b"c") is None  # the batch staged none of its pairs
    stage.set(NS, b"a", b"x" * 10, quota=quota)  # smaller: room again
    stage.set(NS, b"b", b"y" * 60, quota=quota)
    stage.commit()
    assert backend.usage(NS).bytes == 11 + 61
