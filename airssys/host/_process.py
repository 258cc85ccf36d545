"""Processes for components: a granted executable, run bare and bounded.

:meth:`ProcessService.run` runs one executable for a component:

* **The grant first.** ``checks.check_process(command, args)`` runs before anything
  else (an absolute, normalised path; each argument matching the grant's patterns);
  a denial is :class:`~airssys.errors.CapabilityDenied`, audited by the checks'
  ``on_deny``, and nothing is started.
* **Bare.** The executable is run directly (no shell, ``argv[0]`` is the command)
  with an empty environment unless the service was given one, its stdin fed from the
  given bytes and then closed, its working directory a fresh temporary directory
  removed afterwards (or the service's ``cwd``), in a session and process group of
  its own.
* **Bounded.** stdout and stderr are read as they come, each kept up to
  ``max_output`` bytes; the rest is read and dropped (so the process never blocks on
  a full pipe) and the result says ``truncated``. When the process exits, what is
  left of its process group is killed (SIGKILL): a background child does not outlive
  the call. At the timeout the whole group is killed and :class:`ProcessTimeout`
  carries the output read so far. A descendant that leaves the group (``setsid``)
  escapes this; confining it (cgroups, namespaces) is out of scope.

On Linux the exit is watched through a pidfd, so the group is killed while the
leader is still unreaped and its id cannot have been reused. Elsewhere the service
waits for end of output, then for the exit.
"""

from __future__ import annotations

import math
import os
import select
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from ..errors import ProcessError as ProcessError
from ..errors import ProcessTimeout as ProcessTimeout

__all__ = ("ProcessChecks", "ProcessError", "ProcessResult", "ProcessService", "ProcessTimeout")

MIB: Final = 1 << 20
_READ: Final = 64 * 1024
_PIPE_BUF: Final = getattr(select, "PIPE_BUF", 512)
_EXITED: Final = "exited"


class ProcessChecks(Protocol):
    """What the service needs of the component's checks (a CompiledGrants)."""

    def check_process(self, command: str, args: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How the process ended: ``exit_code`` negative for a signal (``-9``: SIGKILL);
    ``truncated`` when stdout or stderr went past the cap."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    truncated: bool


class _Capture:
    __slots__ = ("cap", "data", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True


class ProcessService:
    """One component's process runner; thread-safe (keeps no state between calls)."""

    def __init__(
        self,
        checks: ProcessChecks,
        *,
        max_output: int = MIB,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        default_timeout: float = 30.0,
    ) -> None:
        if max_output < 0 or not default_timeout > 0:
            raise ValueError("max_output must be >= 0 and default_timeout > 0")
        environment = dict(env or {})
        for key, value in environment.items():
            if not key or "=" in key or "\x00" in key or "\x00" in value:
                raise ValueError(f"environment variable {key!r}: a name without '=' or NUL")
        self.checks = checks
        self.max_output = max_output
        self.env = environment
        self.cwd = None if cwd is None else Path(cwd)
        self.default_timeout = default_timeout

    def run(
        self,
        command: str,
        args: Sequence[str] = (),
        stdin: bytes = b"",
        timeout_s: float | None = None,
    ) -> ProcessResult:
        """Run ``command`` with ``args``; see the module's documentation."""
        args = tuple(args)
        self.checks.check_process(command, args)
        timeout = self.default_timeout if timeout_s is None else float(timeout_s)
        if not math.isfinite(timeout):
            raise ProcessError(f"timeout_s must be a finite number, not {timeout}")
        if not timeout > 0:
            raise ProcessTimeout(f"{command}: no time left to run it; not started")
        deadline = time.monotonic() + timeout
        out, err = _Capture(self.max_output), _Capture(self.max_output)
        with self._workdir() as cwd:
            try:
                proc = subprocess.Popen(
                    [command, *args],
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=dict(self.env),
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProcessError(f"could not start {command}: {exc.strerror or exc}") from None
            with proc:
                try:
                    timed_out = _pump(proc, bytes(stdin), deadline, out, err)
                finally:
                    _kill_group(proc.pid)
                    proc.wait()
        if timed_out:
            raise ProcessTimeout(
                f"{command} ran past its timeout ({timeout:g} s); its process group was killed",
                stdout=bytes(out.data),
                stderr=bytes(err.data),
            )
        return ProcessResult(
            proc.returncode, bytes(out.data), bytes(err.data), out.truncated or err.truncated
        )

    @contextmanager
    def _workdir(self) -> Iterator[Path]:
        if self.cwd is not None:
            yield self.cwd
            return
        prefix = "airssys-process-"
        with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as d:
            yield Path(d)


def _pump(
    proc: subprocess.Popen[bytes], stdin: bytes, deadline: float, out: _Capture, err: _Capture
) -> bool:
    """Feed stdin, read stdout and stderr until both end and the process exits;
    True when the deadline came first."""
    assert proc.stdout is not None and proc.stderr is not None
    pidfd = _pidfd(proc.pid)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            if proc.stdin is not None:
                sel.register(proc.stdin, selectors.EVENT_WRITE)
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ, _EXITED)
            view, offset = memoryview(stdin), 0
            pipes, exited = 2, pidfd is None  # no pidfd: wait for the exit afterwards
            while pipes or not exited:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                for key, _ in sel.select(left):
                    if key.data == _EXITED:
                        sel.unregister(key.fileobj)
                        exited = True
                        _kill_group(proc.pid)  # stragglers holding our pipes go with it
                    elif key.fileobj is proc.stdin:
                        try:
                            offset += os.write(key.fd, view[offset : offset + _PIPE_BUF])
                        except BrokenPipeError:
                            offset = len(view)
                        if offset >= len(view):
                            sel.unregister(proc.stdin)
                            proc.stdin.close()
                    else:
                        chunk = os.read(key.fd, _READ)
                        if chunk:
                            key.data.feed(chunk)
                        else:
                            sel.unregister(key.fileobj)
                            pipes -= 1
    finally:
        if pidfd is not None:
            os.close(pidfd)
    if pidfd is None:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            return True
    return False


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:  # an old kernel, or a sandbox refusing the call
        return None
    return fd


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
