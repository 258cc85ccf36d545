"""Processes: only granted executables and arguments, run bare, bounded in time and output."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from airssys.errors import CapabilityDenied
from airssys.host import ProcessError, ProcessService, ProcessTimeout
from tests.host.conftest import Denials, checks

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")

GRANTS: list[dict[str, Any]] = [
    {"command": "/bin/echo", "args": ["hello", "*"]},
    {"command": "/usr/bin/env"},
    {"command": "/bin/cat"},
    {"command": "/bin/pwd"},
    {"command": "/bin/sleep", "args": ["*"]},
]


def service(denials: Denials | None = None, **options: Any) -> ProcessService:
    return ProcessService(checks({"process": GRANTS}, denials), **options)


def gone(*argv: str) -> bool:
    """No process runs ``argv`` (waiting a while: a killed grandchild is not ours to reap,
    and SIGKILL lands asynchronously)."""
    for _ in range(1000):
        if not running(*argv):
            return True
        time.sleep(0.01)
    return False


def running(*argv: str) -> list[int]:
    """Pids whose command line is exactly ``argv`` (zombies included: they have none)."""
    wanted = b"".join(arg.encode() + b"\x00" for arg in argv)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
            except OSError:
                pass  # it ended meanwhile
    return found


def test_a_granted_command_runs() -> None:
    result = service().run("/bin/echo", ["hello", "world"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, b"hello world\n", b"")
    assert not result.truncated


def test_stdin_is_fed_and_the_exit_code_kept() -> None:
    assert service().run("/bin/cat", (), b"abc\x00def").stdout == b"abc\x00def"
    failed = service().run("/bin/sleep", ["not-a-number"])
    assert failed.exit_code != 0 and failed.stderr and not failed.stdout


def test_an_ungranted_command_is_denied_and_never_started(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    denials = Denials()
    with pytest.raises(CapabilityDenied, match=r"^capability denied: process /bin/sh -c "):
        service(denials).run("/bin/sh", ["-c", f"echo > {marker}"])
    assert not marker.exists()
    assert [d[0] for d in denials.seen] == ["process"]


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("/bin/echo", ["bye", "world"]),  # not the pattern
        ("/bin/echo", ["hello"]),  # too few
        ("/bin/echo", ["hello", "a", "b"]),  # too many
        ("/usr/bin/env", ["/bin/sh"]),  # env takes no arguments here
        ("/bin/../bin/echo", ["hello", "x"]),  # not the path as granted
        ("echo", ["hello", "x"]),  # not absolute
    ],
)
def test_arguments_or_paths_outside_the_grant_are_denied(command: str, args: list[str]) -> None:
    denials = Denials()
    with pytest.raises(CapabilityDenied):
        service(denials).run(command, args)
    assert len(denials.seen) == 1


def test_the_environment_is_empty_unless_given() -> None:
    assert service().run("/usr/bin/env").stdout == b""
    given = service(env={"LANG": "C", "A": "1"}).run("/usr/bin/env").stdout
    assert sorted(given.splitlines()) == [b"A=1", b"LANG=C"]
    with pytest.raises(ValueError, match="environment variable"):
        service(env={"A=B": "1"})


def test_the_working_directory_is_fresh_and_removed(tmp_path: Path) -> None:
    first = Path(service().run("/bin/pwd").stdout.decode().strip())
    second = Path(service().run("/bin/pwd").stdout.decode().strip())
    assert first != second and first.name.startswith("airssys-process-")
    assert not first.exists() and not second.exists()
    assert service(cwd=tmp_path).run("/bin/pwd").stdout.decode().strip() == str(tmp_path)


def test_output_past_the_cap_is_truncated_and_drained() -> None:
    result = service(max_output=1000).run("/bin/cat", (), b"z" * (1 << 20))
    assert result.exit_code == 0 and result.truncated  # cat was never blocked on the pipe
    assert result.stdout == b"z" * 1000


def test_the_timeout_kills_the_process() -> None:
    with pytest.raises(ProcessTimeout, match="ran past its timeout") as caught:
        service().run("/bin/sleep", ["30.25"], timeout_s=0.5)
    assert isinstance(caught.value, TimeoutError)
    assert running("/bin/sleep", "30.25") == []  # killed and reaped


def test_no_time_left_means_not_started(tmp_path: Path) -> None:
    with pytest.raises(ProcessTimeout, match="not started"):
        service(cwd=tmp_path).run("/bin/echo", ["hello", "x"], timeout_s=0)


def test_the_timeout_kills_the_whole_group_and_keeps_partial_output() -> None:
    grants = [{"command": "/bin/sh", "args": ["-c", "*"]}]
    shell = ProcessService(checks({"process": grants}))
    script = "echo partial; /bin/sleep 30.5 & /bin/sleep 30.75"
    with pytest.raises(ProcessTimeout) as caught:
        shell.run("/bin/sh", ["-c", script], timeout_s=0.5)
    assert caught.value.stdout == b"partial\n"
    assert gone("/bin/sleep", "30.5") and gone("/bin/sleep", "30.75")


def test_a_background_child_does_not_outlive_the_call() -> None:
    grants = [{"command": "/bin/sh", "args": ["-c", "*"]}]
    shell = ProcessService(checks({"process": grants}))
    # the child keeps stdout open: only killing the group ends the call before the timeout
    result = shell.run("/bin/sh", ["-c", "/bin/sleep 31.5 & echo started"], timeout_s=20)
    assert (result.exit_code, result.stdout) == (0, b"started\n")
    assert running("/bin/sleep", "31.5") == []  # it held our pipe: dead before we returned


def test_an_executable_that_cannot_start_is_a_process_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    grants = [{"command": missing}, {"command": str(plain)}]
    runner = ProcessService(checks({"process": grants}))
    with pytest.raises(ProcessError, match="could not start .*missing: No such file"):
        runner.run(missing)
    with pytest.raises(ProcessError, match="Permission denied"):
        runner.run(str(plain))
    assert os.access(plain, os.R_OK)
