"""Deployment files: every key, its default, and every bad value refused with the
file, the key and what is accepted, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys.actors import Restart, Strategy
from airssys.node import (
    Deployment,
    DeploymentError,
    MetricsAddress,
    default_run_dir,
    load_deployment,
    parse_deployment,
    run_base,
)

from .conftest import COMPONENTS

ECHO = COMPONENTS / "echo"


def _parse(text: str, tmp_path: Path, *, check_files: bool = True) -> object:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return load_deployment(path) if check_files else parse_deployment(text, path=path)


def _refused(text: str, tmp_path: Path, *, check_files: bool = False) -> str:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    with pytest.raises(DeploymentError) as caught:
        if check_files:
            load_deployment(path)
        else:
            parse_deployment(text, path=path, check_files=False)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message


MINIMAL = f"""
[node]
name = "demo"

[[supervisor]]
name = "app"

[[supervisor.component]]
id = "echo"
manifest = "{ECHO}"
"""


def test_the_sample_cluster_deployments_load() -> None:
    a = load_deployment(COMPONENTS / "deployments" / "cluster-a.toml")
    b = load_deployment(COMPONENTS / "deployments" / "cluster-b.toml")
    for deployment, name in ((a, "a"), (b, "b")):
        assert deployment.cluster is not None
        assert (deployment.cluster.url, deployment.cluster.node) == ("nats://127.0.0.1:4222", name)
    assert [c.id for c in b.supervisors[0].components] == ["echo", "counter"]
    assert b.supervisors[0].components[1].source == (COMPONENTS / "fixtures" / "counter.wat")


def test_the_sample_deployment_loads() -> None:
    deployment = load_deployment(COMPONENTS / "deployments" / "demo.toml")
    assert deployment.node.name == "demo"
    assert deployment.node.metrics == MetricsAddress("127.0.0.1", 9464)
    assert [s.name for s in deployment.supervisors] == ["app", "risky"]
    app = deployment.supervisors[0]
    assert [c.id for c in app.components] == ["echo", "counter"]
    assert app.components[0].source == ECHO.resolve()
    assert deployment.supervisors[1].components[0].source == (COMPONENTS / "crasher").resolve()


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    deployment = _parse(MINIMAL, tmp_path)
    node = deployment.node  # type: ignore[attr-defined]
    assert node.run_dir == tmp_path / "xdg" / "airssys" / "demo" == default_run_dir("demo")
    assert node.socket == node.run_dir / "control.sock"
    assert node.metrics is None and node.shutdown_timeout == 10.0
    assert (node.storage, node.data_dir, node.policy, node.audit_log) == (
        "sqlite",
        None,
        None,
        None,
    )
    sup = deployment.supervisors[0]  # type: ignore[attr-defined]
    assert (sup.strategy, sup.intensity, sup.period, sup.unhealthy_after) == (
        Strategy.ONE_FOR_ONE,
        3,
        5.0,
        None,
    )
    child = sup.components[0]
    assert (child.trust, child.restart, child.mailbox, child.execution) == (
        "unknown",
        Restart.PERMANENT,
        None,
        "auto",
    )


def test_the_run_base_without_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert run_base() == Path(f"/tmp/airssys-{os.getuid()}")


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("")
    text = f"""
[node]
name = "full"
run-dir = "run"
metrics = "[::1]:0"
shutdown-timeout = 2.5
storage = "memory"
data-dir = "data"
policy = "policy.toml"
audit-log = "audit.jsonl"

[[supervisor]]
name = "app"
strategy = "rest_for_one"
intensity = 10
period = 1
unhealthy-after = 2

[[supervisor.component]]
id = "echo"
manifest = "{ECHO / "Component.toml"}"
trust = "trusted"
restart = "transient"
mailbox = 5
execution = "thread"

[[supervisor.component]]
id = "wat"
manifest = "{COMPONENTS / "fixtures" / "echo.wat"}"
"""
    deployment = _parse(text, tmp_path)
    node = deployment.node  # type: ignore[attr-defined]
    assert node.run_dir == tmp_path / "run"
    assert node.metrics == MetricsAddress("::1", 0) and str(node.metrics) == "[::1]:0"
    assert (node.shutdown_timeout, node.storage) == (2.5, "memory")
    assert (node.data_dir, node.policy, node.audit_log) == (
        tmp_path / "data",
        tmp_path / "policy.toml",
        tmp_path / "audit.jsonl",
    )
    sup = deployment.supervisors[0]  # type: ignore[attr-defined]
    assert (sup.strategy, sup.intensity, sup.period, sup.unhealthy_after) == (
        Strategy.REST_FOR_ONE,
        10,
        1.0,
        2,
    )
    echo = sup.components[0]
    assert (echo.trust, echo.restart, echo.mailbox, echo.execution) == (
        "trusted",
        Restart.TRANSIENT,
        5,
        "thread",
    )


@pytest.mark.parametrize(
    ("change", "key", "accepted"),
    [
        (('name = "demo"', 'name = "de mo"'), "node.name", "ASCII letters, digits"),
        (('name = "demo"', 'name = ".."'), "node.name", "reserved"),
        (('name = "demo"', "name = 7"), "node.name", "expected a string"),
        (('name = "demo"', 'name = "demo"\ncolour = "red"'), "node.colour", "accepted in node"),
        (('name = "demo"', 'name = "demo"\nmetrics = "0.0.0.0:9464"'), "node.metrics", "loopback"),
        (('name = "demo"', 'name = "demo"\nmetrics = "10.1.2.3:80"'), "node.metrics", "loopback"),
        (('name = "demo"', 'name = "demo"\nmetrics = "127.0.0.1:99999"'), "node.metrics", "port"),
        (('name = "demo"', 'name = "demo"\nmetrics = "127.0.0.1"'), "node.metrics", "HOST:PORT"),
        (('name = "demo"', 'name = "demo"\nmetrics = 9464'), "node.metrics", "expected a string"),
        (
            ('name = "demo"', 'name = "demo"\nshutdown-timeout = -1'),
            "node.shutdown-timeout",
            "seconds >= 0",
        ),
        (
            ('name = "demo"', 'name = "demo"\nshutdown-timeout = "10s"'),
            "node.shutdown-timeout",
            "expected a number",
        ),
        (('name = "demo"', 'name = "demo"\nstorage = "redis"'), "node.storage", "'sqlite'"),
        (
            ('name = "demo"', 'name = "demo"\naudit-log = "no/such/dir/a.jsonl"'),
            "node.audit-log",
            "existing directory",
        ),
        (
            ('name = "app"', 'name = "app"\nstrategy = "all"'),
            "supervisor.app.strategy",
            "'one_for_one'",
        ),
        (('name = "app"', 'name = "app"\nintensity = -1'), "supervisor.app.intensity", "from 0"),
        (
            ('name = "app"', 'name = "app"\nintensity = 1.5'),
            "supervisor.app.intensity",
            "whole number",
        ),
        (('name = "app"', 'name = "app"\nperiod = 0'), "supervisor.app.period", "> 0"),
        (('name = "app"', 'name = "app"\nperiod = nan'), "supervisor.app.period", "out of range"),
        (
            ('name = "app"', 'name = "app"\nunhealthy-after = 0'),
            "supervisor.app.unhealthy-after",
            "from 1",
        ),
        (('name = "app"', 'name = "app/x"'), "supervisor[0].name", "contains '/'"),
        (('name = "app"', 'nome = "app"'), "supervisor[0].name", "missing"),
        (('id = "echo"', 'id = ""'), "supervisor.app.component[0].id", "empty"),
        (
            ('id = "echo"', 'id = "echo"\ntrust = "root"'),
            "supervisor.app.component.echo.trust",
            "'unknown'",
        ),
        (
            ('id = "echo"', 'id = "echo"\nrestart = "always"'),
            "supervisor.app.component.echo.restart",
            "'transient'",
        ),
        (
            ('id = "echo"', 'id = "echo"\nmailbox = 0'),
            "supervisor.app.component.echo.mailbox",
            "from 1 to 10000000",
        ),
        (
            ('id = "echo"', 'id = "echo"\nmailbox = true'),
            "supervisor.app.component.echo.mailbox",
            "whole number",
        ),
        (
            ('id = "echo"', 'id = "echo"\nexecution = "gpu"'),
            "supervisor.app.component.echo.execution",
            "'inline'",
        ),
        (
            ('id = "echo"', 'id = "echo"\nshutdown = 1'),
            "supervisor.app.component.echo.shutdown",
            "accepted in",
        ),
        ((f'manifest = "{ECHO}"', ""), "supervisor.app.component.echo.manifest", "missing"),
    ],
)
def test_a_bad_value_names_the_file_and_key(
    tmp_path: Path, change: tuple[str, str], key: str, accepted: str
) -> None:
    old, new = change
    assert old in MINIMAL
    message = _refused(MINIMAL.replace(old, new, 1), tmp_path)
    assert f": {key}: " in message, message
    assert accepted in message, message


def test_remote_metrics_only_when_allowed(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "demo"', 'name = "demo"\nmetrics = "0.0.0.0:9464"')
    assert "metrics-allow-remote" in _refused(text, tmp_path)
    allowed = text.replace('name = "demo"', 'name = "demo"\nmetrics-allow-remote = true', 1)
    deployment = _parse(allowed, tmp_path, check_files=False)
    assert deployment.node.metrics == MetricsAddress("0.0.0.0", 9464)  # type: ignore[attr-defined]


def test_the_structure_is_checked(tmp_path: Path) -> None:
    assert "missing [node] table" in _refused("[[supervisor]]\nname = 'a'\n", tmp_path)
    assert "unknown section" in _refused(MINIMAL + "\n[extra]\n", tmp_path)
    assert "no [[supervisor]] table" in _refused("[node]\nname = 'a'\n", tmp_path)
    assert "not valid TOML" in _refused("[node\n", tmp_path)
    duplicate = MINIMAL + MINIMAL.split("[[supervisor]]")[1].join(["[[supervisor]]", ""])
    assert "two supervisors share this name" in _refused(duplicate, tmp_path)
    twice = MINIMAL + MINIMAL.split("[[supervisor]]")[1].split("\n", 3)[3]
    assert "two components share this id" in _refused(twice, tmp_path)


def test_component_files_are_checked_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = MINIMAL.replace(str(ECHO), "nowhere")
    message = _refused(missing, tmp_path, check_files=True)
    assert "supervisor.app.component.echo.manifest" in message
    assert "no such file or directory" in message
    (tmp_path / "empty").mkdir()
    assert "holds no Component.toml" in _refused(
        MINIMAL.replace(str(ECHO), "empty"), tmp_path, check_files=True
    )
    (tmp_path / "app.py").write_text("")
    assert "is not a component" in _refused(
        MINIMAL.replace(str(ECHO), "app.py"), tmp_path, check_files=True
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Component.toml").write_text(
        '[component]\nname = "Bad Name"\nversion = "1"\nwasm = "x.wasm"\n'
    )
    message = _refused(MINIMAL.replace(str(ECHO), "broken"), tmp_path, check_files=True)
    assert "bad component manifest" in message and "component.name" in message
    unbuilt = tmp_path / "unbuilt"
    unbuilt.mkdir()
    (unbuilt / "Component.toml").write_text(
        '[component]\nname = "x"\nversion = "1"\nwasm = "x.wasm"\nsource = "app.py"\n'
    )
    # serve builds a Python component whose wasm is missing, when it can
    parse_deployment(
        MINIMAL.replace(str(ECHO), "unbuilt"), path=tmp_path / "deploy.toml", check_files=True
    )
    monkeypatch.setattr("airssys.node._deployment._can_build", lambda: False)
    message = _refused(MINIMAL.replace(str(ECHO), "unbuilt"), tmp_path, check_files=True)
    assert "does not exist (build it: airssys build" in message


def test_the_policy_is_read_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("[nonsense]\n")
    text = MINIMAL.replace('name = "demo"', 'name = "demo"\npolicy = "policy.toml"')
    message = _refused(text, tmp_path, check_files=True)
    assert "node.policy: bad policy" in message


def test_an_unreadable_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="no such file"):
        load_deployment(tmp_path / "absent.toml")
    with pytest.raises(DeploymentError, match="is a directory"):
        load_deployment(tmp_path)
    (tmp_path / "latin1.toml").write_bytes(b"[node]\nname = '\xe9'\n")
    with pytest.raises(DeploymentError, match="not UTF-8"):
        load_deployment(tmp_path / "latin1.toml")


def test_a_long_run_dir_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "demo"', f'name = "demo"\nrun-dir = "/{"x" * 120}"')
    assert "too long for a Unix socket path" in _refused(text, tmp_path)


CLUSTER = '\n[cluster]\nurl = "nats://127.0.0.1:4222,nats://127.0.0.1:4223"\n'


def test_the_cluster_journal_settings_load(tmp_path: Path) -> None:
    text = MINIMAL + CLUSTER + 'journal = "jetstream"\nreplicas = 3\nlease = 4\nrenew = 1.5\n'
    deployment = _parse(text, tmp_path)
    assert isinstance(deployment, Deployment) and deployment.cluster is not None
    cluster = deployment.cluster
    assert (cluster.journal, cluster.replicas, cluster.lease, cluster.renew) == (
        "jetstream", 3, 4.0, 1.5,
    )  # fmt: skip
    defaults = _parse(MINIMAL + CLUSTER, tmp_path)
    assert isinstance(defaults, Deployment) and defaults.cluster is not None
    assert (defaults.cluster.journal, defaults.cluster.replicas) == ("auto", 1)
    assert (defaults.cluster.lease, defaults.cluster.renew) == (3.0, 1.0)


@pytest.mark.parametrize(
    ("extra", "key", "accepted"),
    [
        ('journal = "disk"', "cluster.journal", "accepted: auto, jetstream, local"),
        ("replicas = 0", "cluster.replicas", "an integer from 1 to 5"),
        ('replicas = "3"', "cluster.replicas", "an integer from 1 to 5"),
        ("lease = 0", "cluster.lease", "seconds from 0.1 to 600"),
        ("lease = 2\nrenew = 1.5", "cluster.renew", "at most half the lease"),
    ],
)
def test_bad_cluster_journal_settings_are_refused(
    extra: str, key: str, accepted: str, tmp_path: Path
) -> None:
    message = _refused(MINIMAL + CLUSTER + extra + "\n", tmp_path)
    assert key in message and accepted in message, message
