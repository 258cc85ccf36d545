"""The lifecycle through the CLI, against a real node: keygen, sign, trust, install a
signed package, serve it from the store, update it, roll it back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from airssys.node import ControlClient
from tests.conftest import fixture_path
from tests.node.conftest import cli

# a dozen CLI subprocesses and a node, each a fresh interpreter: slow on a loaded machine
pytestmark = pytest.mark.timeout(300)


def package(root: Path, fixture: str, version: str) -> Path:
    """A component folder: Component.toml and the fixture compiled to svc.wasm."""
    folder = root / f"svc-{version}"
    folder.mkdir()
    (folder / "svc.wasm").write_bytes(wasmtime.wat2wasm(fixture_path(fixture).read_text()))
    (folder / "Component.toml").write_text(
        f'[component]\nname = "svc"\nversion = "{version}"\nwasm = "svc.wasm"\n'
    )
    return folder


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.returncode == 0, f"airssys {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


def test_sign_install_serve_update_and_roll_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_node: Any
) -> None:
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))
    v1 = package(tmp_path, "echo", "1.0.0")
    v2 = package(tmp_path, "trap", "2.0.0")
    key = tmp_path / "release.key"
    ok("keygen", str(key))
    ok("sign", str(v2 / "svc.wasm"), "--key", str(key), "--manifest", str(v2 / "Component.toml"))
    ok("config", "trust", "add", f"{key}.pub", "--name", "release")
    first = as_json("install", str(v1))
    second = as_json("install", str(v2))
    assert (first["trust"], second["trust"]) == ("unknown", "trusted")
    assert {p["version"] for p in as_json("packages")} == {"1.0.0", "2.0.0"}

    node = start_node(
        body='[[supervisor]]\nname = "app"\n\n'
        '[[supervisor.component]]\nid = "svc"\npackage = "svc@1.0.0"\n',
        metrics=False,
    )
    socket = ["--socket", str(node.socket)]
    assert json.loads(ok("ask", "/app/svc", '{"n": 1}', *socket)) == {"n": 1}

    # callers ask throughout the update: every ask answered, none failed
    answers: list[Any] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def caller(n: int) -> None:
        try:
            with ControlClient(node.socket, timeout=30).connect() as client:
                i = 0
                while not stop.is_set():
                    reply = client.request("ask", address="/app/svc", message=f"[{n}, {i}]")
                    answers.append((reply["value"], [n, i]))
                    i += 1
        except BaseException as exc:  # reported below, on the test thread
            failures.append(exc)

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in callers:
        thread.start()
    while len(answers) < 50 and not failures:
        time.sleep(0.01)
    updated = as_json("update", "/app/svc", "2.0.0", *socket)
    seen = len(answers)
    while len(answers) < seen + 50 and not failures:
        time.sleep(0.01)
    stop.set()
    for thread in callers:
        thread.join(30)
    assert failures == []
    assert all(got == sent for got, sent in answers)  # both versions echo
    assert updated["package"] == "svc@2.0.0" and updated["trust"] == "trusted"
    assert (updated["old"]["version"], updated["new"]["version"]) == ("1.0.0", "2.0.0")
    versions = as_json("versions", "/app/svc", *socket)
    assert [v["version"] for v in versions["versions"]] == ["1.0.0", "2.0.0"]
    status = as_json("status", *socket)
    serving = {a["address"]: a for a in status["actors"]}["/app/svc"]
    assert (serving["version"], serving["trust"], serving["package"]) == (
        "2.0.0",
        "trusted",
        "svc@2.0.0",
    )
    # a running package is not uninstalled without --force
    monkeypatch.setenv("AIRSSYS_SOCKET", str(node.socket))
    refused = cli("uninstall", "svc@2.0.0")
    assert refused.returncode == 1 and "running" in refused.stderr
    monkeypatch.delenv("AIRSSYS_SOCKET")

    back = as_json("rollback", "/app/svc", *socket)
    assert back["package"] == "svc@1.0.0"
    versions = as_json("versions", "/app/svc", *socket)  # the history is kept
    assert [(v["version"], v["how"], v["serving"]) for v in versions["versions"]] == [
        ("1.0.0", "deployment", False),
        ("2.0.0", "update", False),
        ("1.0.0", "rollback", True),
    ]
    assert json.loads(ok("ask", "/app/svc", '"again"', *socket)) == "again"
    assert node.stop() == 0


def test_a_tampered_package_is_refused_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))
    v1 = package(tmp_path, "echo", "1.0.0")
    key = tmp_path / "release.key"
    ok("keygen", str(key))
    ok("config", "trust", "add", f"{key}.pub")
    ok("sign", str(v1 / "svc.wasm"), "--key", str(key), "--manifest", str(v1 / "Component.toml"))
    wasm = bytearray((v1 / "svc.wasm").read_bytes())
    wasm[-1] ^= 0xFF
    (v1 / "svc.wasm").write_bytes(bytes(wasm))
    result = cli("install", str(v1))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "differ from what trusted key" in result.stderr
    assert as_json("packages") == []


def test_update_of_a_package_that_is_not_installed_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_node: Any
) -> None:
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))
    ok("install", str(package(tmp_path, "echo", "1.0.0")))
    node = start_node(
        body='[[supervisor]]\nname = "app"\n\n'
        '[[supervisor.component]]\nid = "svc"\npackage = "svc"\n',
        metrics=False,
    )
    result = cli("update", "/app/svc", "9.9.9", "--socket", str(node.socket))
    assert result.returncode == 1
    assert "9.9.9" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_what_update_and_rollback_decided_survives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_node: Any
) -> None:
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))
    for version, fixture in (("1.0.0", "echo"), ("2.0.0", "echo"), ("3.0.0", "trap")):
        ok("install", str(package(tmp_path, fixture, version)))
    body = (
        '[[supervisor]]\nname = "app"\n\n'
        '[[supervisor.component]]\nid = "svc"\npackage = "svc@1.0.0"\n'
    )

    def serving(socket: list[str]) -> str:
        status = as_json("status", *socket)
        return str({a["address"]: a for a in status["actors"]}["/app/svc"]["version"])

    node = start_node(body=body, metrics=False)
    socket = ["--socket", str(node.socket)]
    as_json("update", "/app/svc", "2.0.0", *socket)
    assert node.stop() == 0

    node = start_node(body=body, metrics=False)  # the same deployment, started again
    socket = ["--socket", str(node.socket)]
    assert serving(socket) == "2.0.0"
    # 3.0.0 traps on "poison" while on probation: the node rolls back by itself
    as_json("update", "/app/svc", "3.0.0", "--probation", "60", *socket)
    cli("ask", "/app/svc", "poison", "--codec", "raw", *socket)
    deadline = time.monotonic() + 60
    while serving(socket) != "2.0.0":
        assert time.monotonic() < deadline, "no automatic rollback"
        time.sleep(0.05)
    versions = as_json("versions", "/app/svc", *socket)
    assert [(v["version"], v["how"]) for v in versions["versions"]] == [
        ("1.0.0", "deployment"),
        ("2.0.0", "update"),
        ("3.0.0", "update"),
        ("2.0.0", "automatic rollback"),
    ]
    assert versions["versions"][-1]["serving"] and versions["serving"] == "svc@2.0.0"
    assert node.stop() == 0

    node = start_node(body=body, metrics=False)
    socket = ["--socket", str(node.socket)]
    assert serving(socket) == "2.0.0"  # not the version that failed
    back = as_json("rollback", "/app/svc", *socket)  # the previous one, from the record
    assert back["package"] == "svc@1.0.0" and serving(socket) == "1.0.0"
    assert node.stop() == 0

    node = start_node(body=body, metrics=False)
    assert serving(["--socket", str(node.socket)]) == "1.0.0"
    assert node.stop() == 0

    # a deployment that names another version now wins, and says so
    node = start_node(body=body.replace("svc@1.0.0", "svc@2.0.0"), metrics=False)
    socket = ["--socket", str(node.socket)]
    assert serving(socket) == "2.0.0"
    as_json("update", "/app/svc", "1.0.0", *socket)
    assert node.stop() == 0
    node = start_node(body=body.replace("svc@1.0.0", "svc@3.0.0"), metrics=False)
    assert serving(["--socket", str(node.socket)]) == "3.0.0"
    assert "the deployment changed since this address was updated" in node.stderr
    assert node.stop() == 0
