"""Every storage refusal a component can cause is audited: bucket names and keys
breaking the rules (kind ``name``) and writes past a quota (kind ``quota``), as
grant denials are (kind ``storage``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys.actors import open_system
from airssys.errors import InvalidKey, InvalidName, QuotaExceeded
from airssys.security import DENY, AuditLog, Grants
from airssys.storage import MAX_KEY_BYTES, KeyValue, MemoryBackend
from tests.services.conftest import BUILD_TIMEOUT, ask

pytestmark = BUILD_TIMEOUT


async def test_a_component_s_name_and_quota_refusals_are_audited(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    storage = {"storage": {"buckets": ["*"], "quota": 1000, "keys": 10}}
    async with open_system(cache_dir=shared_cache, data_dir=tmp_path) as system:
        ref = await system.spawn_component(probe, name="p", capabilities=storage)
        answer = await ask(ref, op="open", bucket="a/b")  # no '/' in a bucket name
        assert "bucket name" in answer["error"]
        answer = await ask(ref, op="set", key="k" * (MAX_KEY_BYTES + 1), value="v")
        assert "key" in answer["error"]
        answer = await ask(ref, op="set", key="big", value="x" * 2000)
        assert "quota" in answer["error"]
        denials = system.audit.query(component="/p", decision=DENY)
        assert [(r.kind, r.resource) for r in denials] == [
            ("name", "a/b"),
            ("name", "bucket default"),
            ("quota", "bucket default"),
        ]
        assert "bucket name" in denials[0].reason
        assert f"at most {MAX_KEY_BYTES} bytes" in denials[1].reason
        assert "quota" in denials[2].reason and "1000 bytes" in denials[2].reason
        assert system.audit.denials("/p") == 3
        assert (denials[0].trust, denials[0].digest) != ("", "")  # the component's scope
        assert await ask(ref, op="set", key="small", value="x") == {"ok": True}


def test_key_value_reports_to_the_checks_hook_or_its_own() -> None:
    audit = AuditLog()
    checks = Grants(buckets=("*",)).compile("/c", on_deny=audit.bind("/c"))
    kv = KeyValue(MemoryBackend(), checks=checks, quota=10)
    with pytest.raises(InvalidName):
        kv.open("")
    bucket = kv.open("b")
    with pytest.raises(InvalidKey):
        bucket.get("\ud800")
    with pytest.raises(QuotaExceeded):
        bucket.set_many({"k": b"x" * 20})
    assert [r.kind for r in audit.query(decision=DENY)] == ["name", "name", "quota"]
    seen: list[tuple[str, str, str]] = []
    own = KeyValue(MemoryBackend(), checks=checks, quota=10, on_refuse=lambda *a: seen.append(a))
    with pytest.raises(QuotaExceeded):
        own.open("b").set("k", b"x" * 20)
    assert [kind for kind, _resource, _reason in seen] == ["quota"]
    assert len(audit.query(decision=DENY)) == 3  # the hook given replaced the checks'
