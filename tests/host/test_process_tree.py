"""A process call owns its whole tree: a descendant that leaves the process group
(``setsid``) still ends with the call, in a PID namespace or by the fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from airssys.errors import ProcessError, ProcessTimeout
from airssys.host import ProcessService
from airssys.host._process import _kill_if, _stat, _Tree, namespace_command
from tests.host.conftest import checks
from tests.host.test_process import gone, running
from tests.waiting import poll

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")

SHELL = [{"command": "/bin/sh", "args": ["-c", "*"]}]


def detached(seconds: str, redirect: str = "") -> str:
    """A script starting ``/bin/sleep SECONDS`` in a session of its own (``setsid``),
    and going on only once it is there (the grandchild marks it in the working
    directory after setsid), so the grandchild has surely left the process group."""
    return (
        f"/usr/bin/setsid /bin/sh -c ': > detached; exec /bin/sleep {seconds}' {redirect} & "
        "while [ ! -e detached ]; do /bin/sleep 0.01; done; echo started"
    )


MODES = [
    pytest.param(
        "namespace",
        marks=pytest.mark.skipif(namespace_command() is None, reason="no PID namespaces here"),
    ),
    "group",
]


@pytest.fixture(params=MODES)
def shell(request: pytest.FixtureRequest) -> ProcessService:
    service = ProcessService(checks({"process": SHELL}), containment=request.param)
    assert service.containment == request.param
    return service


def test_a_setsid_grandchild_holding_the_pipes_ends_with_the_call(shell: ProcessService) -> None:
    # the grandchild leaves the process group and keeps stdout and stderr: the call
    # used to wait out its whole deadline for them (ProcessTimeout)
    result = shell.run("/bin/sh", ["-c", detached("32.5")], timeout_s=20)
    assert (result.exit_code, result.stdout) == (0, b"started\n")
    assert running("/bin/sleep", "32.5") == []  # it held our pipe: dead before we returned


def test_a_detached_grandchild_ends_with_the_call_in_a_namespace() -> None:
    if namespace_command() is None:
        pytest.skip("no PID namespaces here")
    shell = ProcessService(checks({"process": SHELL}), containment="namespace")
    script = detached("32.75", "</dev/null >/dev/null 2>&1")
    result = shell.run("/bin/sh", ["-c", script])
    assert (result.exit_code, result.stdout) == (0, b"started\n")
    # it held nothing of ours: only the namespace ends it, before the call returns
    assert running("/bin/sleep", "32.75") == []


def test_the_deadline_kills_a_setsid_grandchild_too(shell: ProcessService) -> None:
    script = detached("33.25") + "; /bin/sleep 33.5"
    with pytest.raises(ProcessTimeout, match="process tree was killed") as caught:
        shell.run("/bin/sh", ["-c", script], timeout_s=2.0)
    assert caught.value.stdout == b"started\n"
    assert gone("/bin/sleep", "33.25") and gone("/bin/sleep", "33.5")


def test_exit_codes_pass_through(shell: ProcessService) -> None:
    assert shell.run("/bin/sh", ["-c", "exit 3"]).exit_code == 3
    assert shell.run("/bin/sh", ["-c", "echo out; echo err >&2"]).stderr == b"err\n"


def test_a_sigkill_from_outside_is_reported_as_such(shell: ProcessService) -> None:
    sleeper = ProcessService(
        checks({"process": [{"command": "/bin/sleep", "args": ["*"]}]}),
        containment=shell.containment,
    )
    got: dict[str, Any] = {}

    def call() -> None:
        got["result"] = sleeper.run("/bin/sleep", ["34"], timeout_s=60)

    thread = threading.Thread(target=call)
    thread.start()
    try:
        [pid] = poll(lambda: running("/bin/sleep", "34"), timeout=60)
        os.kill(pid, signal.SIGKILL)
    finally:
        thread.join(60)
    result = got["result"]
    assert result.exit_code == -signal.SIGKILL
    assert b"unshare" not in result.stderr


def test_what_cannot_start_is_a_process_error(shell: ProcessService, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    grants = [{"command": missing}, {"command": str(plain)}, {"command": str(tmp_path)}]
    runner = ProcessService(checks({"process": grants}), containment=shell.containment)
    with pytest.raises(ProcessError, match="could not start .*missing: No such file"):
        runner.run(missing)
    with pytest.raises(ProcessError, match="Permission denied"):
        runner.run(str(plain))
    with pytest.raises(ProcessError, match="could not start"):
        runner.run(str(tmp_path))


def test_a_containment_that_cannot_be_had_is_refused() -> None:
    with pytest.raises(ValueError, match="containment"):
        ProcessService(checks({"process": SHELL}), containment="jail")  # type: ignore[arg-type]
    auto = ProcessService(checks({"process": SHELL}))
    assert auto.containment == ("namespace" if namespace_command() is not None else "group")


# --- the fallback's parts ----------------------------------------------------------------


def test_the_fallback_kills_a_descendant_it_saw_after_it_detached() -> None:
    """A grandchild that detached and closed our pipes is still killed if a scan saw it
    while its parent lived."""
    script = "/usr/bin/setsid /bin/sleep 34.5 </dev/null >/dev/null 2>&1 & read line"
    proc = subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    tree = _Tree(proc)
    try:

        def seen() -> list[int]:
            tree.scan(now=True)
            return [pid for pid in running("/bin/sleep", "34.5") if pid in tree.seen]

        [grandchild] = poll(seen, timeout=60)
        proc.communicate(b"go\n", timeout=60)  # the parent exits: the grandchild is orphaned
        assert _stat(grandchild) is not None  # still running, no longer our descendant
        tree.kill()
        assert gone("/bin/sleep", "34.5")
    finally:
        proc.kill()
        proc.wait()
        for pid in running("/bin/sleep", "34.5"):
            if pid in tree.seen:
                os.kill(pid, signal.SIGKILL)  # ours, should the test fail


def test_a_reused_pid_is_not_killed() -> None:
    proc = subprocess.Popen(["/bin/sleep", "35"])
    try:
        found = _stat(proc.pid)
        assert found is not None
        _kill_if(proc.pid, found[1] + 1)  # another start time: another process
        assert proc.poll() is None
        _kill_if(proc.pid, found[1])
        assert proc.wait(60) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
