"""``airssys serve`` nodes joined to a real nats-server: cross-node asks through the
control socket, ``instances = 2`` spread over two nodes, ``status --cluster``, and a
partition (the server stopped and started) that heals."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airssys.errors import AirssysError
from airssys.node import ControlError
from tests.cluster.conftest import NatsServer
from tests.conftest import fixture_path
from tests.node.conftest import NodeProcess, cli, deployment_text, free_port
from tests.waiting import poll

pytestmark = pytest.mark.timeout(120)


def start_nodes(
    where: Path, url: str, bodies: dict[str, str], *, data_dir: Path | None = None
) -> dict[str, NodeProcess]:
    """One ``airssys serve`` per name, each with its deployment body and ``[cluster]``."""
    nodes: dict[str, NodeProcess] = {}
    try:
        for name, body in bodies.items():
            here = where / name
            here.mkdir()
            text = deployment_text(here / "run", None, name=name, body=body, data_dir=data_dir)
            text += f'\n[cluster]\nurl = "{url}"\nnode = "{name}"\n'
            path = here / "deployment.toml"
            path.write_text(text)
            nodes[name] = NodeProcess(path, here / "run", None)
        for node in nodes.values():
            node.wait_ready()
    except BaseException:
        for node in nodes.values():
            node.stop()
        raise
    return nodes


def component(sup: str, cid: str, fixture: str, extra: str = "", sup_extra: str = "") -> str:
    return (
        f'[[supervisor]]\nname = "{sup}"\n{sup_extra}\n'
        f'[[supervisor.component]]\nid = "{cid}"\nmanifest = "{fixture_path(fixture)}"\n{extra}\n'
    )


POOL = component("pool", "fuel", "fuel", sup_extra='instances = 2\nnode = ["b", "c"]')
DURABLE = 'durability = { journal = true, fsync = "batch" }\nmailbox = 100000'


@pytest.fixture(scope="module")
def cluster3(
    nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, NodeProcess]]:
    where = tmp_path_factory.mktemp("cluster")
    bodies = {
        "a": component("front", "echo", "echo") + POOL,
        "b": component("svc", "echo", "echo")
        + component("store", "counter", "counter", DURABLE)
        + POOL,
        "c": POOL,
    }
    nodes = start_nodes(where, nats_server.url, bodies, data_dir=where / "data")
    try:
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def where(node: NodeProcess, address: str) -> list[str]:
    addresses: dict[str, list[str]] = node.request("cluster")["addresses"]
    return addresses.get(address, [])


def processed(node: NodeProcess, address: str) -> int:
    for actor in node.request("status")["actors"]:
        if actor["address"] == address:
            return int(actor["processed"])
    return 0


def count(reply: dict[str, Any]) -> int:
    (value,) = struct.unpack("<I", base64.b64decode(reply["value"]["$bytes"]))
    return int(value)


def test_an_ask_on_node_a_is_answered_on_node_b(cluster3: dict[str, NodeProcess]) -> None:
    a, b = cluster3["a"], cluster3["b"]
    poll(lambda: where(a, "/svc/echo") == ["b"])
    before = processed(b, "/svc/echo")
    assert a.request("ask", address="/svc/echo", message='{"hi": 1}') == {
        "codec": "json",
        "value": {"hi": 1},
    }
    result = cli("ask", "/svc/echo", '"x"', "--socket", str(a.socket))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "x"
    assert processed(b, "/svc/echo") == before + 2
    # and back: b reaches a's component
    assert b.request("ask", address="/front/echo", message="2")["value"] == 2


def test_status_cluster_shows_the_nodes_and_where_each_address_lives(
    cluster3: dict[str, NodeProcess],
) -> None:
    a = cluster3["a"]
    poll(lambda: where(a, "/pool/fuel") == ["b", "c"])
    result = cli("status", "--cluster", "--json", "--socket", str(a.socket))
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert [n["node"] for n in view["nodes"]] == ["a", "b", "c"]
    assert view["addresses"]["/svc/echo"] == ["b"] and view["addresses"]["/front/echo"] == ["a"]
    text = cli("status", "--cluster", "--socket", str(a.socket))
    assert text.returncode == 0 and "/pool/fuel" in text.stdout and "b, c" in text.stdout


def test_instances_2_spread_over_two_nodes(cluster3: dict[str, NodeProcess]) -> None:
    a, b, c = cluster3["a"], cluster3["b"], cluster3["c"]
    poll(lambda: where(a, "/pool/fuel") == ["b", "c"])
    # the placement ran the pool on b and c only (a does not list itself)
    assert "/pool/fuel" not in [x["address"] for x in a.request("list")]
    before = processed(b, "/pool/fuel"), processed(c, "/pool/fuel")
    with a.client() as client:
        for n in range(60):
            client.request("ask", address="/pool/fuel", message=str(n), codec="raw")
    after = processed(b, "/pool/fuel"), processed(c, "/pool/fuel")
    assert after[0] - before[0] + after[1] - before[1] == 60
    assert after[0] > before[0] and after[1] > before[1]


def test_serve_with_an_unreachable_cluster_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "deployment.toml"
    path.write_text(deployment_text(tmp_path / "run", None, body=component("s", "e", "echo")))
    url = f"nats://127.0.0.1:{free_port()}"
    result = cli("serve", str(path), "--cluster", url, "--node-name", "x", timeout=60)
    assert result.returncode == 1
    assert f"cannot reach NATS at {url}" in result.stderr


def test_a_partition_heals_and_a_durable_component_loses_no_accepted_message(
    cluster3: dict[str, NodeProcess], nats_server: NatsServer
) -> None:
    a, b = cluster3["a"], cluster3["b"]
    poll(lambda: where(a, "/store/counter") == ["b"])
    acked = 0
    with a.client() as client:
        for _ in range(20):
            client.request("send", address="/store/counter", message="1")
        first = count(client.request("ask", address="/store/counter", message="1"))
        acked = 21
    assert first >= acked
    nats_server.stop()
    # cut off: an ask fails with a typed error, never hangs past its deadline
    with a.client() as client, pytest.raises(ControlError) as cut:
        client.request("ask", address="/store/counter", message="1", timeout=0.5)
    assert cut.value.kind in ("AskTimeout", "ActorDeadError", "ClusterError"), cut.value
    nats_server.start()

    def healed() -> int | None:
        try:
            return count(a.request("ask", address="/store/counter", message="1", timeout=1.0))
        except AirssysError:
            time.sleep(0.2)
            return None

    total = poll(healed, timeout=30)
    # every accepted message counted (the one sent while cut off may count too)
    assert total >= acked + 1
    # b handled them all; its journal holds nothing accepted and unhandled
    assert count(b.request("ask", address="/store/counter", message="1")) == total + 1
