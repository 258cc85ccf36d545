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
  a full pipe) and the result says ``truncated``. At the timeout the process is
  killed and :class:`ProcessTimeout` carries the output read so far.
* **Its whole tree ends with it.** Every descendant, those that leave the process
  group (``setsid``) included, ends when the call ends or at its deadline
  (:attr:`ProcessService.containment` says how):

  - ``namespace`` (preferred): the command runs as process 1 of a PID namespace of
    its own (util-linux ``unshare --pid --fork --kill-child``; as root, or inside a
    user namespace ``--user --map-current-user`` otherwise). When it exits, the
    kernel kills every process left in the namespace before the call sees the exit;
    nothing can leave a PID namespace. Being process 1 changes two things for the
    command: a signal it sends itself without a handler is ignored (``kill -TERM $$``;
    ``abort()`` ends in SIGSEGV instead of SIGABRT), and a SIGKILL from outside the
    call is reported as exit code -9 only because the service reads unshare's own
    message for it. A command that cannot be executed is refused before anything
    starts (missing, not a file, not executable); a file the kernel cannot execute
    is run by ``/bin/sh`` (as ``execvp`` does) where a plain start would refuse it.
  - ``group`` (the fallback, where ``unshare`` or the namespaces are not available):
    the process group is killed, and so is every descendant the service saw: it
    scans ``/proc`` for descendants by parent pid every
    :data:`SCAN_EVERY` seconds while the call runs and at its end, and at the end
    kills whatever still holds the call's stdout or stderr pipe (a ``setsid``
    grandchild that kept them). A process is killed only if its start time still
    matches what was seen (a reused pid is not hit). **Limits**: a descendant that
    detaches (``setsid``, a double fork) *and* closes or redirects its stdout and
    stderr before a scan sees it escapes; so does one that changes user (a setuid
    program: it cannot be killed by us).

On Linux the exit is watched through a pidfd, so the tree is killed while the
leader is still unreaped and its id cannot have been reused. Elsewhere the service
waits for end of output, then for the exit.
"""

from __future__ import annotations

import math
import os
import select
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol

from ..errors import ProcessError as ProcessError
from ..errors import ProcessTimeout as ProcessTimeout

__all__ = (
    "Containment",
    "ProcessChecks",
    "ProcessError",
    "ProcessResult",
    "ProcessService",
    "ProcessTimeout",
    "namespace_command",
)

MIB: Final = 1 << 20
SCAN_EVERY: Final = 0.05
"""Seconds between two scans for descendants (``group`` containment only)."""
_READ: Final = 64 * 1024
_PIPE_BUF: Final = getattr(select, "PIPE_BUF", 512)
_EXITED: Final = "exited"
_SEARCH: Final = "/usr/bin:/bin:/usr/sbin:/sbin"
_UNSHARE_FAILED: Final = b"unshare: failed to execute "
# util-linux's unshare cannot re-raise SIGKILL, the one signal that ends a process 1
# from outside: it says so and exits 1
_UNSHARE_SIGKILL: Final = b"unshare: sigprocmask unblock failed: Invalid argument\n"
Containment = Literal["namespace", "group"]
"""How a call's process tree is held (see the module docstring)."""


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
        containment: Containment | Literal["auto"] = "auto",
    ) -> None:
        if max_output < 0 or not default_timeout > 0:
            raise ValueError("max_output must be >= 0 and default_timeout > 0")
        if containment not in ("auto", "namespace", "group"):
            raise ValueError(
                f"containment must be 'auto', 'namespace' or 'group', not {containment!r:.40}"
            )
        prefix = namespace_command() if containment != "group" else None
        if containment == "namespace" and prefix is None:
            raise ProcessError(
                "no PID namespace for processes here: util-linux's unshare is missing, or "
                "neither root nor user namespaces may make one"
            )
        self._prefix = prefix
        self.containment: Containment = "namespace" if prefix is not None else "group"
        """How each call's process tree is held: ``namespace`` or ``group``."""
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
        argv = [command, *args]
        if self._prefix is not None:
            _check_executable(command)
            argv = [*self._prefix, "--", *argv]
        with self._workdir() as cwd:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=dict(self.env),
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProcessError(f"could not start {command}: {exc.strerror or exc}") from None
            tree = _Tree(proc) if self._prefix is None else None
            with proc:
                try:
                    timed_out = _pump(proc, bytes(stdin), deadline, out, err, tree)
                finally:
                    _end(proc, tree)
                    proc.wait()
        if timed_out:
            raise ProcessTimeout(
                f"{command} ran past its timeout ({timeout:g} s); its process tree was killed",
                stdout=bytes(out.data),
                stderr=bytes(err.data),
            )
        exit_code = proc.returncode
        if self._prefix is not None:
            exit_code = _unshare_outcome(command, exit_code, err)
        return ProcessResult(
            exit_code, bytes(out.data), bytes(err.data), out.truncated or err.truncated
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
    proc: subprocess.Popen[bytes],
    stdin: bytes,
    deadline: float,
    out: _Capture,
    err: _Capture,
    tree: _Tree | None,
) -> bool:
    """Feed stdin, read stdout and stderr until both end and the process exits;
    True when the deadline came first. ``tree``: scanned as the call runs."""
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
                if tree is not None and not exited:
                    tree.scan()
                    left = min(left, SCAN_EVERY)
                for key, _ in sel.select(left):
                    if key.data == _EXITED:
                        sel.unregister(key.fileobj)
                        exited = True
                        _end(proc, tree)  # stragglers holding our pipes go with it
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


def _end(proc: subprocess.Popen[bytes], tree: _Tree | None) -> None:
    """Kill what is left of the call's tree (its leader exited, or time is up)."""
    _kill_group(proc.pid)
    if tree is not None:
        tree.kill()


# --- namespace containment ---------------------------------------------------------------

_probe_lock = threading.Lock()
_probed: list[tuple[str, ...] | None] = []


def namespace_command() -> tuple[str, ...] | None:
    """The ``unshare`` command line that runs a program as process 1 of a new PID
    namespace here, or None when none works (probed once per process)."""
    with _probe_lock:
        if not _probed:
            _probed.append(_probe())
        return _probed[0]


def _probe() -> tuple[str, ...] | None:
    unshare = shutil.which("unshare", path=f"{os.environ.get('PATH', '')}:{_SEARCH}")
    if unshare is None:
        return None
    unshare = os.path.realpath(unshare)
    tail = ("--pid", "--fork", "--kill-child")
    candidates: list[tuple[str, ...]] = [(unshare, *tail)] if os.geteuid() == 0 else []
    candidates.append((unshare, "--user", "--map-current-user", *tail))
    for prefix in candidates:
        try:
            done = subprocess.run(
                [*prefix, "--", unshare, "--version"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env={},
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return None


def _check_executable(command: str) -> None:
    """What a plain start would refuse, refused before unshare runs (it would only
    say so on stderr)."""
    try:
        st = os.stat(command)
    except OSError as exc:
        raise ProcessError(f"could not start {command}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode) or not os.access(command, os.X_OK):
        raise ProcessError(f"could not start {command}: Permission denied")


def _unshare_outcome(command: str, exit_code: int, err: _Capture) -> int:
    """The command's exit code as a plain start reports it (unshare's own words on
    stderr turned back into what they stand for)."""
    if exit_code in (126, 127) and err.data.startswith(_UNSHARE_FAILED):
        why = bytes(err.data[len(_UNSHARE_FAILED) :]).decode("utf-8", "replace").strip()
        raise ProcessError(f"could not start {why}" if why else f"could not start {command}")
    if exit_code == 1 and err.data.endswith(_UNSHARE_SIGKILL):
        del err.data[-len(_UNSHARE_SIGKILL) :]
        return -signal.SIGKILL
    return exit_code


# --- group containment: the process group, and descendants found in /proc ---------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid``, None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


class _Tree:
    """The descendants of a call's process, as seen by scans of ``/proc``: pid ->
    start time (so a pid reused by another process is never killed)."""

    __slots__ = ("_last", "leader", "pipes", "seen")

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.leader = proc.pid
        self.seen: dict[int, int] = {}
        """pid -> start time of every descendant seen (the leader is unreaped until
        the call ends, so its own pid cannot be reused meanwhile)."""
        self._last = 0.0
        self.pipes = {
            f"pipe:[{os.fstat(f.fileno()).st_ino}]"
            for f in (proc.stdout, proc.stderr)
            if f is not None
        }

    def scan(self, *, now: bool = False) -> None:
        """Add every process whose parent is the leader or one already seen (at most
        every SCAN_EVERY seconds unless ``now``)."""
        clock = time.monotonic()
        if not now and clock - self._last < SCAN_EVERY:
            return
        self._last = clock
        children: dict[int, list[tuple[int, int]]] = {}
        started_at: dict[int, int] = {}
        for pid in _pids():
            found = _stat(pid)
            if found is not None:
                children.setdefault(found[0], []).append((pid, found[1]))
                started_at[pid] = found[1]
        # a seen process still alive as itself (not a reused pid) is a parent to follow
        todo = [self.leader] + [p for p, t in self.seen.items() if started_at.get(p) == t]
        while todo:
            for pid, started in children.get(todo.pop(), ()):
                if self.seen.get(pid) != started:
                    self.seen[pid] = started
                    todo.append(pid)

    def holders(self) -> dict[int, int]:
        """Processes (other than this one) holding the call's stdout or stderr pipe."""
        me, found = os.getpid(), {}
        for pid in _pids():
            if pid == me or pid in self.seen:
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target in self.pipes:
                    started = _stat(pid)
                    if started is not None:
                        found[pid] = started[1]
                    break
        return found

    def kill(self) -> None:
        """SIGKILL every descendant seen (and its own descendants), then whatever
        still holds the call's pipes, until a scan finds nothing new."""
        self.scan(now=True)
        self.seen.update(self.holders())
        killed: set[int] = set()
        while True:
            fresh = [pid for pid in self.seen if pid not in killed]
            if not fresh:
                return
            for pid in fresh:
                killed.add(pid)
                _kill_if(pid, self.seen[pid])
            self.scan(now=True)


def _kill_if(pid: int, started: int) -> None:
    """SIGKILL ``pid`` if it is still the process that started at ``started``."""
    opener = getattr(os, "pidfd_open", None)
    fd = None
    if opener is not None:
        try:
            fd = opener(pid)
        except OSError:
            return  # gone
    try:
        found = _stat(pid)
        if found is None or found[1] != started:
            return
        if fd is not None:
            with suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        else:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    finally:
        if fd is not None:
            os.close(fd)
