"""The audit log: grants and denials recorded, queried, counted; floods summarised, never lost."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from airssys.errors import CapabilityDenied
from airssys.security import DENY, GRANT, AuditCounts, AuditLog, AuditRecord, Grants


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_record_holds_every_field() -> None:
    log = AuditLog(wall=lambda: 42.0)
    kept = log.record(
        "echo",
        "send",
        "/app/x",
        GRANT,
        "declared",
        version="1.0",
        digest="sha256:ab",
        trust="unknown",
    )
    assert kept == AuditRecord(
        time=42.0,
        component="echo",
        version="1.0",
        digest="sha256:ab",
        trust="unknown",
        kind="send",
        resource="/app/x",
        decision="grant",
        reason="declared",
    )
    assert log.query() == [kept]


def test_query_filters_by_component_decision_kind_and_time() -> None:
    wall = FakeClock()
    log = AuditLog(wall=wall)
    log.record("a", "send", "/x", GRANT)
    wall.now += 10
    log.record("a", "network", "https://e.com", DENY, "no")
    log.record("b", "send", "/y", DENY, "no")
    wall.now += 10
    log.record("b", "send", "/z", GRANT)
    assert [r.resource for r in log.query(component="a")] == ["/x", "https://e.com"]
    assert [r.resource for r in log.query(decision=DENY)] == ["https://e.com", "/y"]
    assert [r.resource for r in log.query(kind="send", component="b")] == ["/y", "/z"]
    assert [r.resource for r in log.query(since=1010.0)] == ["https://e.com", "/y", "/z"]
    assert [r.resource for r in log.query(limit=1)] == ["/z"]
    assert log.query(component="nobody") == []


def test_counters_count_per_component_and_kind() -> None:
    log = AuditLog()
    log.record("a", "send", "/x", GRANT)
    log.record("a", "send", "/y", DENY)
    log.record("a", "network", "u", DENY)
    log.record("b", "send", "/y", DENY)
    assert log.denials("a") == 2
    assert log.denials("a", "send") == 1
    assert log.denials("nobody") == 0
    assert log.counts("a") == {
        ("a", "send"): AuditCounts(1, 1),
        ("a", "network"): AuditCounts(0, 1),
    }
    assert len(log.counts()) == 3


def test_the_ring_is_bounded() -> None:
    log = AuditLog(capacity=5)
    for i in range(12):
        log.record("a", "send", f"/x{i}", GRANT)
    assert len(log) == 5
    assert [r.resource for r in log.query()] == [f"/x{i}" for i in range(7, 12)]
    assert log.counts("a")[("a", "send")].grants == 12


def test_a_denial_flood_is_summarised_not_dropped() -> None:
    clock = FakeClock()
    log = AuditLog(burst=3, window=10.0, clock=clock)
    kept = [log.record("a", "send", f"/x{i}", DENY, f"denied {i}") for i in range(10)]
    assert sum(record is not None for record in kept) == 3
    assert log.denials("a") == 10
    log.record("a", "send", "/ok", GRANT)  # grants are never held back
    assert len(log.query(decision=GRANT)) == 1
    clock.now += 10.0
    log.record("a", "send", "/after", DENY, "later")  # a new window: the summary comes first
    denials = log.query(decision=DENY)
    assert [r.count for r in denials] == [1, 1, 1, 7, 1]
    summary = denials[3]
    assert summary.resource == "/x9"
    assert summary.reason.startswith("7 more send denials in a 10 s window, summarised")
    assert "denied 9" in summary.reason
    assert sum(r.count for r in denials) == log.denials("a") == 11


def test_floods_are_limited_per_component_and_kind() -> None:
    log = AuditLog(burst=2, clock=FakeClock())
    for _ in range(5):
        log.record("a", "send", "/x", DENY)
        log.record("a", "network", "u", DENY)
        log.record("b", "send", "/x", DENY)
    assert len(log.query(decision=DENY)) == 6


def test_close_and_flush_write_the_summaries_still_open(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path=path, burst=1, window=10.0, clock=clock)
    for _ in range(4):
        log.record("a", "send", "/x", DENY)
    for _ in range(3):
        log.record("b", "send", "/x", DENY)
    log.flush()  # windows still open: nothing summarised yet
    assert [r.count for r in log.query()] == [1, 1]
    clock.now += 11
    log.flush()  # now over
    assert sorted(r.count for r in log.query()) == [1, 1, 2, 3]
    log.record("a", "send", "/x", DENY)
    log.record("a", "send", "/x", DENY)
    log.close()
    assert [r.count for r in log.query()][-1] == 1  # the last held denial, summarised at close
    written = lines(path)
    assert sum(int(str(r["count"])) for r in written) == log.denials("a") + log.denials("b") == 9


def test_the_file_gets_one_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path=path) as log:
        log.record("a", "send", "/x", GRANT, "declared", version="1", digest="d", trust="unknown")
        log.record("a", "network", "https://evil.example/\ud800", DENY, "capability denied")
    written = lines(path)
    assert written[0] == {
        "time": written[0]["time"],
        "component": "a",
        "version": "1",
        "digest": "d",
        "trust": "unknown",
        "kind": "send",
        "resource": "/x",
        "decision": "grant",
        "reason": "declared",
        "count": 1,
    }
    assert written[1]["decision"] == "deny"
    assert log.closed
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)


def test_the_file_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for _ in range(2):
        with AuditLog(path=path) as log:
            log.record("a", "send", "/x", GRANT)
    assert len(lines(path)) == 2


def test_records_after_close_stay_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path=path)
    log.close()
    log.close()  # idempotent
    log.record("a", "send", "/late", DENY)
    assert log.denials("a") == 1 and log.query()[0].resource == "/late"
    assert path.read_text() == ""


def test_long_values_are_truncated() -> None:
    log = AuditLog()
    record = log.record("a", "send", "/x" * 5000, DENY, "r" * 10_000)
    assert record is not None
    assert len(record.resource) < 1200 and len(record.reason) < 2200


def test_a_bad_decision_is_refused() -> None:
    with pytest.raises(ValueError, match="decision"):
        AuditLog().record("a", "send", "/x", "maybe")  # type: ignore[arg-type]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        AuditLog(capacity=0)
    with pytest.raises(ValueError, match="burst"):
        AuditLog(burst=0)


def test_a_scope_records_grants_at_start_and_denials_from_checks() -> None:
    log = AuditLog()
    scope = log.bind("thumbs", version="2.0", digest="sha256:cd", trust="unknown")
    grants = Grants(send=("/app/*",), buckets=("cache",))
    scope.grants(grants)
    checks = grants.compile("thumbs", on_deny=scope)
    checks.check_send("/app/x")
    with pytest.raises(CapabilityDenied):
        checks.check_send("/other")
    assert [(r.kind, r.resource, r.decision) for r in log.query(component="thumbs")] == [
        ("send", "/app/*", "grant"),
        ("storage", "bucket cache", "grant"),
        ("send", "/other", "deny"),
    ]
    denial = log.query(decision=DENY)[0]
    assert denial.reason == "capability denied: send /other; granted: /app/*"
    assert (denial.version, denial.digest, denial.trust) == ("2.0", "sha256:cd", "unknown")
    assert scope.denials() == 1


def test_a_scope_records_policy_excesses_as_denials() -> None:
    from airssys.security import Policy

    log = AuditLog()
    scope = log.bind("greedy", trust="unknown")
    grants = Grants(process=(), network=())
    excesses = Policy().ceiling("unknown").excesses(Grants(buckets=("a",), keys=10**6))
    scope.refusals(excesses)
    scope.grants(grants)
    [denial] = log.query(decision=DENY)
    assert (denial.kind, denial.resource) == ("storage", "keys 1000000")


def test_recording_is_thread_safe() -> None:
    log = AuditLog(capacity=100_000, burst=10**9)
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(2000):
            log.record(f"c{n % 2}", "send", f"/x{i}", DENY if i % 2 else GRANT)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(log) == 16_000
    assert log.denials("c0") + log.denials("c1") == 8000
    assert sum(c.grants for c in log.counts().values()) == 8000
