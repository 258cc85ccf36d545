"""The node end to end: ``airssys serve`` in a subprocess, its HTTP endpoints, its
control socket, and the commands that talk to it (each in a subprocess too)."""

from __future__ import annotations

import json
import re
import socket
import stat

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from airssys.node import ControlClient, ControlError
from tests.waiting import poll

from .conftest import COMPONENTS, NodeProcess, cli, http_get, json_lines

pytestmark = pytest.mark.timeout(300)  # a cold cache compiles the components first


def _messages(node: NodeProcess, address: str, outcome: str) -> float:
    status, _kind, body = http_get(node.url("/metrics"))
    assert status == 200
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if (
                sample.name == "airssys_messages_total"
                and sample.labels.get("address") == address
                and sample.labels.get("outcome") == outcome
            ):
                return sample.value
    raise AssertionError(f"no airssys_messages_total sample for {address} {outcome}")


def test_ready_socket_private_and_endpoints_up(node: NodeProcess) -> None:
    assert node.request("ping") == {"node": "test", "pid": node.proc.pid, "ready": True}
    assert stat.S_IMODE(node.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(node.run_dir.stat().st_mode) == 0o700
    ready = json.loads((node.run_dir / "ready").read_text())
    assert ready["socket"] == str(node.socket) and ready["pid"] == node.proc.pid
    assert http_get(node.url("/readyz"))[0] == 200
    assert f"airssys node 'test' ready: socket {node.socket}" in node.stderr
    assert http_get(node.url("/nope"))[0] == 404


def test_metrics_scraped_over_http_move_with_traffic(node: NodeProcess) -> None:
    status, kind, _body = http_get(node.url("/metrics"))
    assert status == 200 and kind == CONTENT_TYPE_LATEST
    before = _messages(node, "/app/echo", "ok")
    for n in range(3):
        assert node.request("ask", address="/app/echo", message=json.dumps({"n": n})) == {
            "codec": "json",
            "value": {"n": n},
        }
    assert _messages(node, "/app/echo", "ok") == before + 3


def test_status_json_shows_the_tree(node: NodeProcess) -> None:
    result = cli("status", "--json", "--socket", str(node.socket))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["node"] == "test" and status["ready"] is True
    assert status["metrics"] == node.url("/metrics")
    addresses = [a["address"] for a in status["actors"]]
    assert addresses == ["/app", "/app/echo", "/app/counter", "/risky", "/risky/crasher"]
    echo = status["actors"][1]
    assert echo["kind"] == "component" and echo["component"] == "echo"
    assert echo["memory_limit"] == 64 * 1024 * 1024 and echo["trust"] == "unknown"


def test_status_text_is_a_tree(node: NodeProcess) -> None:
    result = cli("status", "--socket", str(node.socket))
    assert result.returncode == 0, result.stderr
    assert "node 'test'" in result.stdout
    assert re.search(r"├── echo\s+running", result.stdout)


def test_list_and_info(node: NodeProcess) -> None:
    listed = cli("list", "--json", "--socket", str(node.socket))
    assert listed.returncode == 0, listed.stderr
    assert {"address": "/app/counter", "kind": "component", "state": "running"} in json.loads(
        listed.stdout
    )
    text = cli("list", "--socket", str(node.socket))
    assert re.search(r"^/risky/crasher\s+component\s+running$", text.stdout, re.M)
    info = cli("info", "/app/counter", "--json", "--socket", str(node.socket))
    assert info.returncode == 0, info.stderr
    result = json.loads(info.stdout)
    assert result["actor"]["address"] == "/app/counter"
    assert result["audit"]["subscribe"] == {"grants": 1, "denials": 0}  # orders.# declared


def test_info_of_an_unknown_address_is_one_line(node: NodeProcess) -> None:
    result = cli("info", "/app/nobody", "--socket", str(node.socket))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: ActorDeadError: no actor at /app/nobody (airssys list shows the addresses)"
    ]
    bad = cli("info", "app", "--socket", str(node.socket))
    assert bad.returncode == 1 and "does not start with '/'" in bad.stderr


def test_ask_and_send_through_the_cli(node: NodeProcess) -> None:
    asked = cli("ask", "/app/echo", '{"hi": [1, 2]}', "--socket", str(node.socket))
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout) == {"hi": [1, 2]}
    text = cli("ask", "/app/echo", "plain words", "--codec", "cbor", "--socket", str(node.socket))
    assert json.loads(text.stdout) == "plain words"
    before = node.request("ask", address="/app/counter", message="{}")["value"]["count"]
    sent = cli("send", "/app/counter", '{"add": 5}', "--socket", str(node.socket))
    assert sent.returncode == 0, sent.stderr
    after = node.request("ask", address="/app/counter", message="{}")["value"]["count"]
    assert after == before + 5 + 1  # mailbox order: the send is handled before the ask
    refused = cli("ask", "/app", "1", "--socket", str(node.socket))
    assert refused.returncode == 1
    assert "ask goes to a component; /app is a supervisor" in refused.stderr


def test_logs_through_the_cli(node: NodeProcess) -> None:
    result = cli("logs", "--json", "--socket", str(node.socket))
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert any(e["event"] == "node ready" for e in events)
    scoped = cli("logs", "--json", "--component", "/risky", "--socket", str(node.socket))
    keys = ("address", "actor", "child", "supervisor")
    scoped_events = json_lines(scoped.stdout)
    assert scoped_events
    for event in scoped_events:
        assert any(str(event.get(k, "")).startswith("/risky") for k in keys), event
    audit = cli("logs", "--audit", "--json", "--socket", str(node.socket))
    records = json_lines(audit.stdout)
    grant = {"component": "/app/counter", "decision": "grant", "kind": "subscribe"}
    assert any(grant.items() <= record.items() for record in records), records


def test_logs_follow_streams_new_events(node: NodeProcess) -> None:
    seen = []
    with node.client() as client:
        stream = client.stream("logs", component="/app/echo", limit=1, idle_timeout=30)
        node.request("stop", address="/app/echo")
        node.request("start", address="/app/echo")
        for event in stream:
            seen.append(event)
            if event.get("event") == "control request" and event.get("op") == "start":
                break
    assert [e["op"] for e in seen if e.get("event") == "control request"][-2:] == ["stop", "start"]
    assert all(e.get("address") == "/app/echo" for e in seen if "address" in e)


def test_stop_start_restart_a_child(node: NodeProcess) -> None:
    socket_path = str(node.socket)
    stopped = cli("stop", "/app/echo", "--socket", socket_path)
    assert (stopped.returncode, stopped.stdout) == (0, "stopped /app/echo: stopped\n")
    listed = node.request("list")
    assert {"address": "/app/echo", "kind": "component", "state": "stopped"} in listed
    with pytest.raises(ControlError, match="ActorDeadError"):
        node.request("ask", address="/app/echo", message="1")
    started = cli("start", "/app/echo", "--socket", socket_path)
    assert (started.returncode, started.stdout) == (0, "started /app/echo: running\n")
    restarted = cli("restart", "/app/echo", "--socket", socket_path)
    assert (restarted.returncode, restarted.stdout) == (0, "restarted /app/echo: running\n")
    assert node.request("ask", address="/app/echo", message="7")["value"] == 7
    top = cli("restart", "/app", "--socket", socket_path)
    assert top.returncode == 1 and "top-level supervisor" in top.stderr


def test_healthz_flips_while_a_child_crash_loops_and_back(node: NodeProcess) -> None:
    assert poll(lambda: http_get(node.url("/healthz"))[0] == 200)
    for _ in range(5):
        node.request("send", address="/risky/crasher", message='"poison"')
    _status, kind, body = poll(
        lambda: (r := http_get(node.url("/healthz")))[0] == 503 and r, timeout=60
    )
    assert kind == "application/json"
    problems = json.loads(body)["problems"]
    assert any("/risky is crash-looping" in p and "crasher" in p for p in problems), problems
    # the crashes stop; once the supervisor's period has passed it is healthy again
    _status, _kind, body = poll(
        lambda: (r := http_get(node.url("/healthz")))[0] == 200 and r, timeout=60
    )
    assert json.loads(body) == {"healthy": True, "problems": []}
    assert node.request("ask", address="/risky/crasher", message="1")["value"]["ok"] == 1


def test_bad_requests_get_errors_and_the_connection_goes_on(node: NodeProcess) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(node.socket))
        reader = sock.makefile("rb")
        for line, kind, text in (
            (b"not json\n", "ProtocolError", "not valid JSON"),
            (b'{"op": "launch"}\n', "ProtocolError", "unknown op 'launch'"),
            (b'{"op": "ask", "address": "/app/echo"}\n', "ProtocolError", "needs the field"),
            (b'{"op": "info", "address": "/a/../b"}\n', "ProtocolError", "reserved"),
            (b'{"op": "list", "extra": 1}\n', "ProtocolError", "takes no field 'extra'"),
            (b'{"op": "ask", "address": "/app/echo", "message": "1", "codec": "x"}\n', "", "codec"),
        ):
            sock.sendall(line)
            reply = json.loads(reader.readline())
            assert reply["ok"] is False and text in reply["error"], reply
            assert reply["type"] == (kind or "ProtocolError")
        sock.sendall(b'{"op": "ping"}\n')
        assert json.loads(reader.readline())["ok"] is True
        sock.sendall(b"x" * (1024 * 1024 + 10) + b"\n")
        reply = json.loads(reader.readline())
        assert reply["ok"] is False and "longer than" in reply["error"]
        assert reader.readline() == b""  # that connection is closed; the node goes on
        reader.close()
    assert node.request("ping")["ready"] is True


def test_a_client_against_no_node_says_so_in_one_line(tmp_path: object) -> None:
    result = cli("status", "--node", "no-such-node-here")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"error: no airssys node is running at \S+/no-such-node-here/control\.sock "
        r"\(start one with: airssys serve DEPLOYMENT\.toml\)",
        lines[0],
    )


def test_a_bad_deployment_is_refused_before_anything_starts(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    run_dir = tmp_path / "run"
    deployment = tmp_path / "bad.toml"
    deployment.write_text(
        f'[node]\nname = "bad"\nrun-dir = "{run_dir}"\n\n[[supervisor]]\nname = "app"\n\n'
        f'[[supervisor.component]]\nid = "echo"\nmanifest = "{COMPONENTS / "echo"}"\n'
        'trust = "root"\n'
    )
    result = cli("serve", str(deployment))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {deployment}: supervisor.app.component.echo.trust: 'root' is not accepted; "
        "accepted: 'trusted', 'unknown', 'dev'"
    ]
    assert not run_dir.exists()  # nothing started


def test_sigterm_drains_every_accepted_message(start_node: object) -> None:
    body = f"""
[[supervisor]]
name = "app"

[[supervisor.component]]
id = "counter"
manifest = "{COMPONENTS / "counter"}"
mailbox = 100000
"""
    node = start_node(body=body, metrics=False)  # type: ignore[operator]
    total = 2000
    request = json.dumps({"op": "send", "address": "/app/counter", "message": "{}"}) + "\n"
    with socket.socket(socket.AF_UNIX) as sock:  # pipelined: all sent, then all answered
        sock.connect(str(node.socket))
        sock.sendall(request.encode() * total)
        reader = sock.makefile("rb")
        replies = [json.loads(reader.readline()) for _ in range(total)]
        reader.close()
    accepted = {"ok": True, "result": {"address": "/app/counter", "queued": True}}
    assert all(reply == accepted for reply in replies)
    assert node.stop() == 0
    stderr = node.stderr
    assert f"final /app/counter: processed={total} queued=0 dropped=0" in stderr, stderr[-2000:]
    assert "stopped after" in stderr.splitlines()[-1]
    assert not node.socket.exists() and not (node.run_dir / "ready").exists()
    with pytest.raises(Exception, match="no airssys node is running"):
        ControlClient(node.socket).connect()
