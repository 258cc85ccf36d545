"""Run a granted executable: ``process.run("/bin/echo", ["hello"])``.

    from airssys.sdk import process

    done = process.run("/usr/bin/convert", ["in.png", "-resize", "50%", "out.png"])
    if done.exit_code != 0:
        raise Reject(done.stderr.decode())

Only executables the component's ``[capabilities] process`` grant names (by absolute
path, with arguments matching its patterns) run; anything else raises
:class:`ProcessDenied` naming the command and the grant, and nothing starts. The
process runs bare: no shell, an empty environment, a fresh working directory, its
output capped (``truncated`` says so). ``timeout_ms`` (0: none) and the deadline
of the message being handled bound it; at the limit it is killed and
:class:`ProcessError` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import Denied, ServiceError, _service_error, _services

__all__ = ("Completed", "ProcessDenied", "ProcessError", "run")


class ProcessError(ServiceError):
    """The process could not run, or ran past its time and was killed."""


class ProcessDenied(ProcessError, Denied):
    """The component's ``process`` grant does not allow this command line."""


def _error(message: str) -> Exception:
    return _service_error(message, ProcessError, ProcessDenied)


@dataclass(frozen=True, slots=True)
class Completed:
    """How the process ended: ``exit_code`` negative for a signal."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    truncated: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run(
    command: str,
    args: Iterable[str] = (),
    *,
    stdin: bytes | str = b"",
    timeout_ms: int = 0,
) -> Completed:
    """Run ``command`` (an absolute path) with ``args``; see the module's documentation."""
    data = stdin.encode("utf-8") if isinstance(stdin, str) else bytes(stdin)
    code, out, err, truncated = _services().process_run(
        command, [str(a) for a in args], data, int(timeout_ms)
    )
    return Completed(code, out, err, truncated)
