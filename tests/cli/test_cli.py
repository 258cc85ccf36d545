"""The airssys command, run as a user runs it: in a subprocess, judged by its exit
status, its stdout and its stderr."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from airssys.cli import hoist_global_options
from tests.conftest import ROOT, fixture_path

pytestmark = pytest.mark.timeout(900)
INSTALL_HINT = "pip install 'airssys[build]'"
DEADLINE = 120.0  # seconds a subprocess may take to answer before the test fails


def _cli(
    *args: str,
    env: dict[str, str] | None = None,
    code: str = "from airssys.cli import main; main()",
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        timeout=600,
        check=False,
    )


def _cli_fed(*args: str, input: bytes, env: dict[str, str]) -> tuple[int, list[str], list[str]]:
    """Run with ``input`` on stdin: the exit status, stdout's and stderr's lines."""
    result = subprocess.run(
        [sys.executable, "-m", "airssys.cli", *args],
        capture_output=True,
        input=input,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    return (
        result.returncode,
        result.stdout.decode().splitlines(),
        result.stderr.decode().splitlines(),
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def _spawn(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """The command running with pipes on stdin, stdout and stderr; killed and closed after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airssys.cli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        # Ctrl-C as a terminal sends it: a job started in the background inherits
        # SIGINT ignored, and Python then never turns it into KeyboardInterrupt
        preexec_fn=_default_sigint,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


Lines = queue.Queue[bytes | None]


def _lines_of(stream: IO[bytes]) -> Lines:
    """Lines of a pipe, read by a thread, so a test can wait for one with a deadline."""
    lines: Lines = queue.Queue()

    def pump() -> None:
        try:
            for line in iter(stream.readline, b""):
                lines.put(line)
        except ValueError:  # closed by the test once the process is gone
            pass
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_line(lines: Lines) -> str | None:
    """The next line, None at the end of the stream."""
    try:
        line = lines.get(timeout=DEADLINE)
    except queue.Empty:
        raise AssertionError(f"no line within {DEADLINE} s") from None
    return None if line is None else line.decode().rstrip("\n")


def _reply(replies: Lines, proc: subprocess.Popen[bytes]) -> str:
    """The next line on stdout; the process's stderr if it ended instead."""
    line = _next_line(replies)
    if line is None:
        proc.wait(timeout=DEADLINE)
        assert proc.stderr is not None
        raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read().decode()}")
    return line


def _rest(lines: Lines) -> list[str]:
    """Every line up to the end of the stream."""
    out: list[str] = []
    while (line := _next_line(lines)) is not None:
        out.append(line)
    return out


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- help, version, completion, usage errors (item 21) -------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["demo"],
        ["run"],
        ["build"],
        ["bench"],
        ["examples"],
        ["examples", "run"],
        ["examples", "all"],
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(args: list[str], flag: str) -> None:
    result = _cli(*args, flag)
    assert result.returncode == 0, result.stderr
    assert "Usage: airssys" in result.stdout


def test_help_lists_the_global_options() -> None:
    out = _cli("--help").stdout
    for option in ("--version", "--log-level", "--quiet", "--json-logs", "--debug"):
        assert option in out
    assert "--install-completion" in out


def test_version() -> None:
    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "airssys 0.1.0"


def test_shell_completion_completes_commands_and_choices() -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_AIRSSYS_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
        result = _cli(env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("airssys de") == ["demo"]
    assert complete("airssys demo --strategy ") == ["one_for_one", "one_for_all", "rest_for_one"]


def test_install_completion_writes_the_script_for_the_shell(tmp_path: Path) -> None:
    # the shell named, not detected: detection walks the parent processes, which
    # a test run from a detached job has none of
    env = {"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = _cli("--install-completion", "bash", env=env)
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "airssys.sh"
    assert "_AIRSSYS_COMPLETE" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()


def test_demo_with_a_bogus_strategy_is_the_demos_own_usage_error() -> None:
    result = _cli("demo", "--strategy", "bogus")
    assert result.returncode == 2
    assert "Usage: airssys demo [OPTIONS]" in result.stderr
    assert "'bogus' is not one of 'one_for_one', 'one_for_all', 'rest_for_one'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_run_timeout_must_be_a_positive_number(timeout: str) -> None:
    result = _cli("run", str(fixture_path("echo")), "1", "--timeout", timeout)
    assert result.returncode == 2
    assert "Invalid value for '--timeout'" in result.stderr
    assert result.stdout == ""


def test_an_unknown_command_is_a_usage_error() -> None:
    result = _cli("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


# --- global log options, before or after the subcommand (item 19) ---------------------------


def test_global_options_move_in_front_of_the_subcommand() -> None:
    assert hoist_global_options(["run", "x", "--quiet", "--log-level", "info", "1"]) == [
        "--quiet",
        "--log-level",
        "info",
        "run",
        "x",
        "1",
    ]
    assert hoist_global_options(["demo", "--json-logs", "--log-level=error", "--debug"]) == [
        "--json-logs",
        "--log-level=error",
        "--debug",
        "demo",
    ]
    assert hoist_global_options(["run", "x", "--", "--quiet"]) == ["run", "x", "--", "--quiet"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_level_and_json_logs_before_or_after_the_subcommand(
    where: str, built_components: Path, shared_cache: Path
) -> None:
    env = {"AIRSSYS_CACHE_DIR": str(shared_cache)}
    command = ["build", str(built_components / "echo")]
    options = ["--log-level", "info", "--json-logs"]
    args = [*options, *command] if where == "before" else [*command, *options]
    result = _cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line JSON
    logged = [r for r in records if "progress" not in r]
    assert {"event": "cached build", "level": "info"}.items() <= logged[-1].items()
    steps = [(r["progress"], r["state"]) for r in records if "progress" in r]
    assert steps == [("build", "start"), ("build", "done")]  # the progress, as JSON too
    assert "cache hit" in result.stdout  # the result on stdout, the logs on stderr

    plain = _cli(*command, "--log-level", "info", env=env)
    assert "cached build" in plain.stderr and not plain.stderr.startswith("{")
    default = _cli(*command, env=env)  # warnings and up by default: no info line
    assert default.returncode == 0 and default.stderr == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_subcommand_leaves_errors_only(where: str) -> None:
    command = ["run", str(fixture_path("trap")), "--codec", "raw", "poison"]
    loud = _cli(*command)
    assert loud.returncode == 1
    loud_lines = loud.stderr.strip().splitlines()
    assert any("component instance died" in line for line in loud_lines)  # a warning

    quiet = _cli(*(["--quiet", *command] if where == "before" else [*command, "--quiet"]))
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines() == [
        line for line in loud_lines if line.startswith(("message 1:", "1 of 1"))
    ]


def test_log_level_is_validated() -> None:
    result = _cli("demo", "--log-level", "chatty")
    assert result.returncode == 2
    assert "Invalid value for '--log-level'" in result.stderr


@pytest.mark.parametrize("args", [["demo", "--quiet"], ["--quiet", "demo"]])
def test_demo_passes_quietly(args: list[str]) -> None:
    result = _cli(*args, "--strategy", "rest_for_one")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    assert result.stderr == ""


# --- exit codes and Ctrl-C (item 17) -------------------------------------------------------


def test_errors_are_one_line_unless_debug(tmp_path: Path) -> None:
    bad = tmp_path / "Component.toml"
    bad.write_text('[component]\nname = "x"\nversion = "1"\nwasm = "x.wasm"\nflavour = "mint"\n')
    result = _cli("run", str(bad), "1")
    assert result.returncode == 1
    assert "unknown key component.flavour" in _one_error_line(result)
    debug = _cli("run", str(bad), "1", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_failing_examples_make_examples_all_and_run_exit_non_zero(tmp_path: Path) -> None:
    for name, body in [("00-pass", "pass"), ("01-fail", "raise SystemExit(3)")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.py").write_text(f'"""{name}."""\n{body}\n')
    code = (
        "import sys, pathlib, airssys.cli as cli; "
        "cli.EXAMPLES = pathlib.Path(sys.argv.pop(1)); cli.main()"
    )
    everything = _cli(str(tmp_path), "examples", "all", code=code)
    assert everything.returncode == 1
    assert "failed: 01-fail" in everything.stderr
    one = _cli(str(tmp_path), "examples", "run", "01-fail", code=code)
    assert one.returncode == 3
    assert _cli(str(tmp_path), "examples", "run", "00-pass", code=code).returncode == 0


def test_ctrl_c_during_run_exits_130_with_one_line() -> None:
    with _spawn("run", str(fixture_path("echo"))) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        replies = _lines_of(proc.stdout)
        proc.stdin.write(b'{"ready": 1}\n')
        proc.stdin.flush()
        assert _reply(replies, proc) == '{"ready": 1}'  # running, and stdin stays open
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 130
        assert proc.stderr.read().decode().splitlines() == ["interrupted"]


def test_ctrl_c_during_build_exits_130_and_leaves_nothing_behind(tmp_path: Path) -> None:
    component = tmp_path / "echo"
    shutil.copytree(ROOT / "components" / "echo", component, ignore=shutil.ignore_patterns(".*"))
    (component / "echo.wasm").unlink(missing_ok=True)
    sources = sorted(os.listdir(component))
    cache = tmp_path / "cache"
    env = {"AIRSSYS_CACHE_DIR": str(cache)}
    with _spawn("build", str(component), "--log-level", "info", env=env) as proc:
        assert proc.stderr is not None
        logs = _lines_of(proc.stderr)
        seen: list[str] = []
        while not seen or "building with componentize-py" not in seen[-1]:
            line = _next_line(logs)
            assert line is not None, f"the build ended before componentize-py ran: {seen}"
            seen.append(line)
        assert len(list((cache / "builds").iterdir())) == 1  # the scratch directory
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 130
        assert _rest(logs) == ["interrupted"]
    assert sorted(os.listdir(component)) == sources
    assert list((cache / "builds").iterdir()) == []  # no scratch directory, no artifact


# --- airssys run: streamed, replies only on stdout, failures named (item 20) ----------------


def test_run_sends_messages_and_prints_replies(shared_cache: Path) -> None:
    result = _cli(
        "run",
        str(fixture_path("echo")),
        '{"a": 1}',
        "plain text",
        env={"AIRSSYS_CACHE_DIR": str(shared_cache)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"a": 1}', '"plain text"']
    assert result.stderr == ""


def test_run_streams_stdin_a_reply_per_line_before_eof(shared_cache: Path) -> None:
    env = {"AIRSSYS_CACHE_DIR": str(shared_cache)}
    with _spawn("run", str(fixture_path("echo")), env=env) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        replies = _lines_of(proc.stdout)
        for message in ("[1, 2]", '{"b": "c"}'):
            proc.stdin.write(message.encode() + b"\n")
            proc.stdin.flush()
            assert _reply(replies, proc) == message  # answered while stdin is still open
        proc.stdin.write(b"\n3")  # a blank line is skipped; the last line needs no newline
        proc.stdin.close()
        assert proc.wait(timeout=DEADLINE) == 0
        assert _rest(replies) == ["3"]
        assert proc.stderr.read() == b""


def test_run_keeps_going_after_a_failed_line_and_names_it(shared_cache: Path) -> None:
    status, replies, errors = _cli_fed(
        "run",
        str(fixture_path("trap")),
        "--codec",
        "raw",
        "--quiet",
        input=b"hello\n\npoison\n\xff\nagain\n",
        env={"AIRSSYS_CACHE_DIR": str(shared_cache)},
    )
    assert status == 1
    assert replies == ["b'hello'", "b'\\xff'", "b'again'"]
    assert errors[0].startswith("line 3: ComponentTrap: ")  # line 2 was blank
    assert errors[1:] == ["1 of 4 message(s) failed"]


def test_run_names_a_line_that_is_not_utf8(shared_cache: Path) -> None:
    status, replies, errors = _cli_fed(
        "run",
        str(fixture_path("echo")),
        input=b"1\n\xff\xfe\n2\n",
        env={"AIRSSYS_CACHE_DIR": str(shared_cache)},
    )
    assert status == 1
    assert replies == ["1", "2"]
    assert errors[0].startswith("line 2: UnicodeDecodeError: ")
    assert errors[1:] == ["1 of 3 message(s) failed"]


def test_run_given_python_source_points_at_the_folder() -> None:
    result = _cli("run", "components/counter/app.py")
    assert result.returncode == 1
    assert _one_error_line(result) == (
        "error: app.py is Python source: pass its component folder: airssys run components/counter"
    )
    build = _cli("build", "components/counter/app.py")
    assert build.returncode == 1
    assert _one_error_line(build).endswith(
        "pass its component folder: airssys build components/counter"
    )


def test_run_a_missing_path_is_one_line() -> None:
    result = _cli("run", "components/nothing-here", "1")
    assert result.returncode == 1
    assert _one_error_line(result) == "error: components/nothing-here: no such file or directory"


def test_build_reports_a_cache_hit(built_components: Path, shared_cache: Path) -> None:
    result = _cli(
        "build", str(built_components / "echo"), env={"AIRSSYS_CACHE_DIR": str(shared_cache)}
    )
    assert result.returncode == 0, result.stderr
    assert "cache hit" in result.stdout


def test_build_reports_a_syntax_error_in_one_line(tmp_path: Path) -> None:
    component = tmp_path / "broken"
    shutil.copytree(
        ROOT / "components" / "echo", component, ignore=shutil.ignore_patterns("*.wasm", ".*")
    )
    (component / "app.py").write_text("def handle(message)\n    return message\n")
    result = _cli("build", str(component), env={"AIRSSYS_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 1
    assert _one_error_line(result).endswith("broken/app.py:1: SyntaxError: expected ':'")


# --- the builder missing (item 23) ---------------------------------------------------------


@pytest.fixture
def no_builder(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import componentize_py`` raises ImportError."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "componentize_py.py").write_text('raise ImportError("no componentize_py here")\n')
    return {"PYTHONPATH": str(shim), "AIRSSYS_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.parametrize(
    "args",
    [
        ["build", "{echo}"],
        ["run", "{echo}", "1"],
        ["examples", "all"],
        ["examples", "run", "00-echo"],
        ["bench"],
    ],
)
def test_commands_needing_the_builder_say_how_to_get_it(
    args: list[str], no_builder: dict[str, str], tmp_path: Path
) -> None:
    echo = tmp_path / "echo"
    shutil.copytree(
        ROOT / "components" / "echo", echo, ignore=shutil.ignore_patterns("*.wasm", ".*")
    )
    result = _cli(*(arg.format(echo=echo) for arg in args), env=no_builder)
    assert result.returncode == 1
    line = _one_error_line(result)
    assert line.startswith("error: ") and line.endswith(INSTALL_HINT)
    assert result.stdout == ""  # no example or benchmark started


def test_an_example_run_directly_says_how_to_get_the_builder(no_builder: dict[str, str]) -> None:
    result = _cli(
        code="import runpy; runpy.run_path('examples/00-echo/main.py', run_name='__main__')",
        env=no_builder,
    )
    assert result.returncode == 1
    assert _one_error_line(result).endswith(INSTALL_HINT)


def test_run_without_the_builder_uses_an_existing_wasm(
    built_components: Path, shared_cache: Path, tmp_path: Path, no_builder: dict[str, str]
) -> None:
    echo = tmp_path / "echo"
    shutil.copytree(built_components / "echo", echo)
    env = {**no_builder, "AIRSSYS_CACHE_DIR": str(shared_cache)}
    result = _cli("run", str(echo), '{"hi": 1}', env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"hi": 1}']
    assert "the builder is not installed" in result.stderr and "componentize-py" in result.stderr


# --- the examples ---------------------------------------------------------------------------


def _ladder() -> list[str]:
    """The examples in order: every folder of examples/ with a main.py."""
    return sorted(p.parent.name for p in (ROOT / "examples").glob("*/main.py"))


def test_examples_list_names_the_ladder() -> None:
    result = _cli("examples", "list")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.strip().splitlines()]
    assert names[:5] == ["00-echo", "01-counter", "02-supervisor", "03-request-reply", "04-pubsub"]
    assert names == _ladder()


def test_examples_all_pass(built_components: Path, shared_cache: Path) -> None:
    result = _cli("examples", "all", env={"AIRSSYS_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all examples passed" in result.stdout
    assert result.stdout.count("all checks passed") == len(_ladder())


def test_run_takes_the_trust_a_component_needs(
    built_components: Path, shared_cache: Path, tmp_path: Path
) -> None:
    """fileprobe mounts a directory: refused at the default trust, named; run when trusted."""
    env = {"AIRSSYS_CACHE_DIR": str(shared_cache)}
    probe = built_components / "fileprobe"
    refused = _cli("run", str(probe), '{"op": "list", "path": "/data"}', env=env)
    assert refused.returncode == 1
    assert "component 'fileprobe' (trust unknown) is refused" in refused.stderr
    trusted = _cli(
        "run", str(probe), "--trust", "trusted", '{"op": "list", "path": "/data"}', env=env
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == '["greeting.txt"]'
