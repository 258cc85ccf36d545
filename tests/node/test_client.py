"""Which control socket the commands talk to, and what they say when no node answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys.errors import AirssysError
from airssys.node import ControlClient, NodeNotRunning, find_socket


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AIRSSYS_SOCKET", raising=False)
    return tmp_path / "airssys"


def _running(base: Path, name: str) -> Path:
    (base / name).mkdir(parents=True)
    sock = base / name / "control.sock"
    sock.touch()
    return sock


def test_explicit_choices_come_first(base: Path) -> None:
    assert find_socket(path="/x/control.sock") == Path("/x/control.sock")
    assert find_socket("demo") == base / "demo" / "control.sock"
    assert find_socket(env={"AIRSSYS_SOCKET": "/y.sock"}) == Path("/y.sock")
    with pytest.raises(AirssysError, match="a node name is"):
        find_socket("../etc")


def test_the_only_node_running_or_the_default_one(base: Path) -> None:
    assert find_socket() == base / "default" / "control.sock"  # none: where it would be
    only = _running(base, "alpha")
    assert find_socket() == only
    _running(base, "beta")
    with pytest.raises(AirssysError, match=r"several airssys nodes are running \(alpha, beta\)"):
        find_socket()
    default = _running(base, "default")
    assert find_socket() == default


def test_no_node_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with pytest.raises(NodeNotRunning) as caught:
        ControlClient(path).connect()
    assert str(caught.value) == (
        f"no airssys node is running at {path} (start one with: airssys serve DEPLOYMENT.toml)"
    )
    path.touch()  # a stale file, not a socket
    with pytest.raises(NodeNotRunning):
        ControlClient(path).connect()
