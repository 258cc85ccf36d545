"""A client of the control socket (blocking; what the ``airssys`` commands use).

    with ControlClient(find_socket()) as client:
        print(client.request("status")["health"])
        for event in client.stream("logs", component="/app/echo"):
            print(event)

:func:`find_socket` picks the socket as the commands do: ``--socket PATH``, else
``--node NAME`` (that node's default run dir), else ``$AIRSSYS_SOCKET``, else the
only node running under the default run base (or the one named ``default``). A
socket left by a node that was killed (nobody listens, nobody holds the run dir's
lock) is removed on the way and does not count.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from .._dirs import run_base
from ..errors import AirssysError
from ..errors import ControlError as ControlError
from ..errors import NodeNotRunning as NodeNotRunning
from ..names import NODE_NAME, NODE_NAME_RULE
from ._deployment import default_run_dir
from ._node import LOCK_FILE, READY_FILE, SOCKET_FILE

__all__ = ("ControlClient", "ControlError", "NodeNotRunning", "find_socket")

_REPLY_MAX: Final = 256 * 1024 * 1024
_PROBE_TIMEOUT: Final = 2.0
DEFAULT_NODE: Final = "default"


def find_socket(
    node: str | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The control socket to talk to (see the module docstring)."""
    if path is not None:
        return Path(path)
    if node is not None:
        if not NODE_NAME.fullmatch(node):
            raise AirssysError(f"--node {node!r}: a node name is {NODE_NAME_RULE}")
        return default_run_dir(node) / SOCKET_FILE
    environ = os.environ if env is None else env
    if environ.get("AIRSSYS_SOCKET"):
        return Path(environ["AIRSSYS_SOCKET"])
    base = run_base()
    try:
        running = sorted(entry.name for entry in base.iterdir() if _answers(entry))
    except OSError:
        running = []
    if DEFAULT_NODE in running or not running:
        return base / DEFAULT_NODE / SOCKET_FILE
    if len(running) == 1:
        return base / running[0] / SOCKET_FILE
    raise AirssysError(
        f"several airssys nodes are running ({', '.join(running)}): pick one with --node NAME"
    )


def _answers(run_dir: Path) -> bool:
    """Is a node listening on ``run_dir``'s control socket? A socket nobody listens on,
    in a run dir whose lock no process holds, is what a killed node left behind: it is
    removed (with its ready file), so it never counts as a node running."""
    path = run_dir / SOCKET_FILE
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(_PROBE_TIMEOUT)
    try:
        probe.connect(str(path))
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        pass
    except OSError:  # e.g. a full backlog: someone is there
        return True
    finally:
        probe.close()
    if _locked(run_dir / LOCK_FILE):
        return True  # its node is alive (starting, or stuck): not ours to clean
    for stale in (path, run_dir / READY_FILE):
        with contextlib.suppress(OSError):
            stale.unlink()
    return False


def _locked(lock: Path) -> bool:
    """Does a process hold ``lock`` (a node's flock on its run dir)?"""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the flock if we took it
    return False


class ControlClient:
    """One connection to a node's control socket; requests one at a time."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float | None = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None
        self.ended: str | None = None
        """Why the node ended the last stream (``{"end": why}``), once it has."""

    def connect(self) -> ControlClient:
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            sock.close()
            raise NodeNotRunning(self.path) from None
        except PermissionError as exc:
            sock.close()
            raise AirssysError(
                f"cannot reach the node at {self.path}: {exc.strerror or exc} "
                "(it belongs to another user?)"
            ) from None
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile("rb")
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, message: dict[str, Any]) -> None:
        self.connect()
        assert self._sock is not None
        line = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        try:
            self._sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            raise AirssysError(
                f"the node at {self.path} closed the connection (is it stopping?)"
            ) from None

    def _receive(self) -> dict[str, Any] | None:
        assert self._file is not None
        try:
            line = self._file.readline(_REPLY_MAX)
        except TimeoutError:
            raise AirssysError(
                f"the node at {self.path} did not answer within {self.timeout:g} s"
            ) from None
        except ConnectionResetError:
            line = b""
        if not line:
            return None
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise AirssysError(f"the node at {self.path} answered {line[:80]!r}")
        return reply

    def request(
        self,
        op: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        **fields: Any,
    ) -> Any:
        """One request; its result, or ControlError when the node refused it.

        ``on_progress``: asks the node for its progress while it works (update,
        rollback), each event (a dict, ``ProgressEvent.as_dict``) handed to it."""
        if on_progress is not None:
            fields["progress"] = True
        self._send({"op": op, **{k: v for k, v in fields.items() if v is not None}})
        reply = self._receive()
        while reply is not None and "progress" in reply and "ok" not in reply:
            if on_progress is not None and isinstance(reply["progress"], dict):
                on_progress(reply["progress"])
            reply = self._receive()
        if reply is None:
            raise AirssysError(
                f"the node at {self.path} closed the connection before answering (is it stopping?)"
            )
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error")), str(reply.get("type", "Error")))
        return reply.get("result")

    def stream(
        self, op: str, *, idle_timeout: float | None = None, **fields: Any
    ) -> Iterator[dict[str, Any]]:
        """A streaming request (``follow``): each event until the node ends the stream
        (then :attr:`ended` says why); a node that goes away without ending it (killed)
        is an AirssysError.

        The request is sent and accepted (else ControlError) before this returns, so
        every event from then on is in the iterator. ``idle_timeout``: seconds to wait
        for the next event before giving up (an AirssysError); None waits as long as
        it takes.
        """
        self.connect()
        assert self._sock is not None
        self._sock.settimeout(idle_timeout)
        self.timeout = idle_timeout
        self._send({"op": op, "follow": True, **{k: v for k, v in fields.items() if v is not None}})
        first = self._receive()
        if first is None:
            raise AirssysError(f"the node at {self.path} closed the connection before answering")
        if not first.get("ok"):
            raise ControlError(str(first.get("error")), str(first.get("type", "Error")))
        return self._events()

    def _events(self) -> Iterator[dict[str, Any]]:
        while True:
            line = self._receive()
            if line is None:
                raise AirssysError(
                    f"the node at {self.path} went away without ending the stream "
                    "(killed, or it crashed?)"
                )
            if "end" in line:
                self.ended = str(line["end"])
                return
            event = line.get("event")
            if isinstance(event, dict):
                yield event
