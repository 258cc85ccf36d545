"""The deployment's ``[cluster]`` table and the placement keys of a supervisor."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys.node import Deployment, DeploymentError, parse_deployment, with_cluster
from tests.conftest import fixture_path

BASE = f"""
[node]
name = "n1"

[[supervisor]]
name = "app"
{{placement}}

[[supervisor.component]]
id = "echo"
manifest = "{fixture_path("echo")}"
"""


def parse(placement: str = "", cluster: str = "") -> Deployment:
    return parse_deployment(BASE.replace("{placement}", placement) + cluster)


def test_cluster_table_and_placement() -> None:
    deployment = parse(
        'instances = 2\nnode = ["b", "a"]', '\n[cluster]\nurl = "nats://127.0.0.1:4222"\n'
    )
    assert deployment.cluster is not None
    assert deployment.cluster.url == "nats://127.0.0.1:4222"
    assert deployment.cluster.node == "n1"
    (sup,) = deployment.supervisors
    assert sup.instances == 2 and sup.nodes == ("b", "a") and sup.placed
    single = parse('node = "a"').supervisors[0]
    assert single.nodes == ("a",) and single.instances is None and single.placed
    assert not parse().supervisors[0].placed


@pytest.mark.parametrize(
    ("placement", "cluster", "needle"),
    [
        ("", '\n[cluster]\nurl = "http://x:1"\n', "cluster.url"),
        ("", '\n[cluster]\nnode = "a"\n', "cluster.url: missing"),
        ("", '\n[cluster]\nurl = "nats://h:1"\nport = 3\n', "unknown key"),
        ("instances = 0", "", "supervisor.app.instances"),
        ('node = ["a", "a"]', "", "listed twice"),
        ("node = []", "", "supervisor.app.node"),
        ('node = "bad name"', "", "supervisor.app.node"),
    ],
)
def test_bad_cluster_values_are_refused(placement: str, cluster: str, needle: str) -> None:
    with pytest.raises(DeploymentError, match=needle):
        parse(placement, cluster)


def test_serve_options_replace_the_table(tmp_path: Path) -> None:
    deployment = parse_deployment(
        BASE.replace("{placement}", ""), path=tmp_path / "d.toml", check_files=False
    )
    with pytest.raises(DeploymentError, match="--node-name needs a cluster"):
        with_cluster(deployment, None, "x")
    joined = with_cluster(deployment, "nats://127.0.0.1:5", "x")
    assert joined.cluster is not None
    assert (joined.cluster.url, joined.cluster.node) == ("nats://127.0.0.1:5", "x")
    with pytest.raises(DeploymentError, match="--cluster"):
        with_cluster(deployment, "localhost", None)
