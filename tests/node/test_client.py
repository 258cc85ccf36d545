"""Which control socket the commands talk to, and what they say when no node answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys.errors import AirssysError
from airssys.node import ControlClient, NodeNotRunning, find_socket


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AIRSSYS_SOCKET", raising=False)
    return tmp_path / "airssys"


_listening: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_listeners() -> Iterator[None]:
    yield
    while _listening:
        _listening.pop().close()


def _running(base: Path, name: str) -> Path:
    """A run dir whose control socket a listener answers (a node, as far as the
    client can tell)."""
    (base / name).mkdir(parents=True)
    path = base / name / "control.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    _listening.append(listener)
    return path


def _killed(base: Path, name: str) -> Path:
    """A run dir as a node killed with -9 leaves it: a socket nobody listens on, a
    ready file, an unlocked lock file."""
    (base / name).mkdir(parents=True)
    path = base / name / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
    (base / name / "ready").write_text("{}\n")
    (base / name / "node.lock").write_text("12345\n")
    return path


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


def test_a_killed_nodes_socket_is_cleaned_and_not_counted(base: Path) -> None:
    stale = _killed(base, "beta")
    only = _running(base, "alpha")
    assert find_socket() == only
    assert not stale.exists()
    assert not (stale.parent / "ready").exists()


def test_a_silent_socket_whose_lock_is_held_is_left_alone(base: Path) -> None:
    """A node still starting (its lock held) is not taken for a dead one."""
    import fcntl

    stale = _killed(base, "beta")
    with (stale.parent / "node.lock").open("r+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        _running(base, "alpha")
        with pytest.raises(AirssysError, match=r"several airssys nodes are running"):
            find_socket()
    assert stale.exists()


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
