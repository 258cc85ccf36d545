"""Trust is decided at use: a package's signer is checked against the trust store
whenever the package is read (served, updated, listed, deployed), so removing a key
makes its packages unknown at once, with a warning naming the key, and audited."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from structlog.testing import capture_logs

from airssys.lifecycle import Store, TrustStore, sign_folder
from airssys.node._deployment import audit_trust, parse_deployment
from airssys.security import DENY, AuditLog
from tests.lifecycle.conftest import write_component

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signed_package(tmp_path: Path, key: Ed25519PrivateKey, version: str = "1.0.0") -> Path:
    folder = write_component(tmp_path / f"pkg-{version}", version=version)
    sign_folder(folder, key)
    return folder


def test_a_removed_key_makes_its_packages_unknown_where_they_are_read(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    trust = TrustStore(tmp_path / "trusted")
    kid = trust.add(key.public_key(), name="release")
    audit = AuditLog()
    store = Store(tmp_path / "data", trust=trust, audit=audit)
    installed = store.install(signed_package(tmp_path, key))
    assert (installed.trust, installed.signer, installed.revoked) == ("trusted", kid, None)
    assert store.get("tiny").trust == "trusted"

    trust.remove("release")
    with capture_logs() as logs:
        now = store.get("tiny", "1.0.0")
        listed = store.list()
        versions = store.versions("tiny")
    assert (now.trust, now.signer, now.revoked) == ("unknown", kid, kid)
    assert [r.trust for r in listed] == [r.trust for r in versions] == ["unknown"]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [(w["event"], w["key"], w["package"]) for w in warnings] == [
        ("package signer no longer trusted", kid, "tiny@1.0.0")  # once per store object
    ]
    [record] = audit.query(kind="trust")
    assert (record.component, record.decision, record.trust) == ("tiny@1.0.0", DENY, "unknown")
    assert kid in record.resource and "no longer in the trust store" in record.reason

    trust.add(key.public_key())  # trusted again: decided at use, both ways
    assert store.get("tiny").trust == "trusted"


def test_a_key_trusted_after_install_is_recorded_by_installing_again(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    trust = TrustStore(tmp_path / "trusted")
    store = Store(tmp_path / "data", trust=trust)
    folder = signed_package(tmp_path, key)
    assert store.install(folder).signer is None  # its key was not trusted yet
    kid = trust.add(key.public_key())
    again = store.install(folder)
    assert (again.trust, again.signer) == ("trusted", kid)
    assert store.get("tiny").trust == "trusted"


def test_a_deployment_reads_the_trust_of_now_and_the_node_audits_it(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    trust = TrustStore()  # the configured one (AIRSSYS_CONFIG_DIR, see conftest)
    kid = trust.add(key.public_key(), name="release")
    data = tmp_path / "node-data"
    Store(data).install(signed_package(tmp_path, key))
    text = (
        f'[node]\nname = "n"\ndata-dir = "{data}"\n\n[[supervisor]]\nname = "app"\n\n'
        '[[supervisor.component]]\nid = "svc"\npackage = "tiny@1.0.0"\n'
    )
    before = parse_deployment(text, path=tmp_path / "deployment.toml")
    entry = before.supervisors[0].components[0]
    assert (entry.trust, entry.revoked) == ("trusted", None)

    trust.remove(kid)
    after = parse_deployment(text, path=tmp_path / "deployment.toml")
    entry = after.supervisors[0].components[0]
    assert (entry.trust, entry.revoked) == ("unknown", kid)
    audit = AuditLog()
    assert audit_trust(after, audit) == 1
    [record] = audit.query(kind="trust")
    assert (record.component, record.resource) == ("/app/svc", f"tiny@1.0.0 signed by {kid}")
    assert audit_trust(before, AuditLog()) == 0

    # the operator's explicit trust still decides
    explicit = (
        parse_deployment(text + 'trust = "trusted"\n', path=tmp_path / "deployment.toml")
        .supervisors[0]
        .components[0]
    )
    assert (explicit.trust, explicit.revoked) == ("trusted", None)


@pytest.mark.timeout(300)  # CLI subprocesses
def test_the_cli_says_which_packages_a_removed_key_leaves_unknown(cli: Cli, tmp_path: Path) -> None:
    def ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        return done

    ok("keygen", tmp_path / "k")
    kid = json.loads(ok("config", "trust", "add", f"{tmp_path / 'k'}.pub", "--json").stdout)[
        "key_id"
    ]
    folder = write_component(tmp_path / "app")
    ok("sign", folder, "--key", tmp_path / "k")
    assert json.loads(ok("install", folder, "--json").stdout)["trust"] == "trusted"

    removed = json.loads(ok("config", "trust", "remove", kid, "--json").stdout)
    assert removed["packages"] == ["tiny@0.1.0"]
    listed = ok("packages", "--json")
    [row] = json.loads(listed.stdout)
    assert (row["trust"], row["revoked"]) == ("unknown", kid)
    assert f"the key {kid} that signed tiny@0.1.0 is no longer in the trust store" in (
        listed.stderr
    )
