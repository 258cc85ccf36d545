"""The ``airssys`` command: demo, run, build, examples, bench, storage, journal; the node
(serve, status, list, info, logs, ask, send, stop, start, restart, update, rollback:
``_node``); keys and signatures (keygen, sign, verify, config trust: ``_keys``); the
store (install, uninstall, packages, package: ``_store_cmds``); init, config and
completions (``_init``, ``_config``, ``_completions``).

Exit codes: 0 on success, 1 on any failure (one clear line on stderr unless
``--debug``), 2 on a usage error, 130 on Ctrl-C (one line: ``interrupted``). A
reader that closes stdout early (``airssys logs -f | head``) ends the command
quietly with 0.
The global options ``--log-level``, ``--quiet``, ``--json-logs`` and ``--debug``
are accepted before or after the subcommand; logs go to stderr, never stdout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import Abort, TyperException

from .._logging import truncate
from .._version import __version__
from ..actors import Strategy
from ..errors import AirssysError, ControlError, ReplayDivergence
from ._completions import register_completions
from ._config import register_config
from ._init import register_init
from ._journal import journal_app
from ._keys import config_app
from ._keys import register as register_keys
from ._node import NODE_COMMANDS, running_packages
from ._options import LogLevel, Settings
from ._output import StdoutClosed, out_console, own_words
from ._progress import reporting
from ._storage import storage_app
from ._store_cmds import register as register_store

__all__ = ("app", "main")

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
BENCHES = ROOT / "benches"
INTERRUPTED: Final = 130
_ERROR_LIMIT: Final = 4000

_GLOBAL_FLAGS: Final = frozenset({"--debug", "--quiet", "-q", "--json-logs"})
_GLOBAL_VALUED: Final = "--log-level"
_GLOBAL_NOTE: Final = (
    "Global options (--log-level LEVEL, --quiet, --json-logs, --debug) are also "
    "accepted here; see airssys --help."
)

app = typer.Typer(
    name="airssys",
    help="An actor-hosted WebAssembly component runtime.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
examples_app = typer.Typer(
    help="The examples ladder: list, run one, or run all.", no_args_is_help=True
)
app.add_typer(examples_app, name="examples", epilog=_GLOBAL_NOTE)
app.add_typer(storage_app, name="storage", epilog=_GLOBAL_NOTE)
app.add_typer(journal_app, name="journal", epilog=_GLOBAL_NOTE)
console = out_console(width=None)  # rules (examples, bench) span the terminal
err_console = Console(stderr=True)


class CodecName(StrEnum):  # the names airssys.codec.CODECS knows
    JSON = "json"
    MESSAGEPACK = "messagepack"
    CBOR = "cbor"
    RAW = "raw"


class TrustName(StrEnum):  # airssys.security.TrustLevel
    UNKNOWN = "unknown"
    TRUSTED = "trusted"
    DEV = "dev"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"airssys {__version__}")
        raise typer.Exit()


@app.callback(epilog="Ctrl-C exits with status 130; any failure exits non-zero.")
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", is_eager=True, callback=_show_version
        ),
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            case_sensitive=False,
            help="Log level on stderr: trace, debug, info, warning (default), error, critical.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Errors only: no warnings, no progress.")
    ] = False,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="Log lines as JSON objects (on stderr).")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks; log at debug level.")
    ] = False,
) -> None:
    Settings.debug, Settings.quiet, Settings.json_logs = debug, quiet, json_logs
    Settings.level = log_level
    Settings.apply()


def _positive_seconds(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a positive number of seconds")
    return value


@app.command(epilog=_GLOBAL_NOTE)
def demo(
    strategy: Annotated[
        Strategy, typer.Option(case_sensitive=False, help="The supervisor's restart strategy.")
    ] = Strategy.ONE_FOR_ONE,
) -> None:
    """The supervisor demo: a crash, the restart, and the strategy at work."""
    from .._demo import execute

    # the demo crashes a component on purpose: its logs are noise unless asked for
    Settings.apply(default=LogLevel.CRITICAL)
    code = execute(strategy)
    if code:
        raise typer.Exit(code)


@app.command(epilog=_GLOBAL_NOTE)
def build(
    path: Annotated[Path, typer.Argument(help="A component folder or its Component.toml")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even on a cache hit")] = False,
) -> None:
    """Build a Python, C or Zig component (cached by its sources and the toolchain)."""
    from ..build import python_source_hint
    from ._run import build_reported

    if path.suffix == ".py":
        raise AirssysError(python_source_hint(path, "build"))
    with reporting():
        result = build_reported(path, force=force)
    how = "cache hit" if result.cached else f"built in {result.seconds:.1f} s"
    console.print(Text.assemble((result.name, "green"), f": {result.wasm} ({how})"))


@app.command(epilog=_GLOBAL_NOTE)
def run(
    component: Annotated[
        Path, typer.Argument(help="A component folder, its Component.toml, or a .wasm/.wat file")
    ],
    messages: Annotated[
        list[str] | None,
        typer.Argument(help="Messages (JSON, else text); none: one per stdin line, streamed"),
    ] = None,
    codec_name: Annotated[
        CodecName, typer.Option("--codec", case_sensitive=False, help="The messages' codec.")
    ] = CodecName.JSON,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for each reply (positive).", callback=_positive_seconds),
    ] = 5.0,
    trust: Annotated[
        TrustName,
        typer.Option(
            case_sensitive=False,
            help="The component's trust level: its capabilities must fit that level's "
            "ceiling in the policy (unknown: messaging and a little storage only).",
        ),
    ] = TrustName.UNKNOWN,
    policy: Annotated[
        Path | None, typer.Option(help="An operator policy file (TOML; docs/security.md).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where key-value storage lives (default: XDG data).")
    ] = None,
) -> None:
    """Spawn a component under a supervisor, send it messages, print the replies.

    Replies go to stdout, one line each; a message that fails is named on stderr
    and the rest still run; the exit status is 1 if any failed.
    """
    from ._run import prepare, run_component

    with reporting():  # the build, then the compile (when the caches miss)
        prepare(component)
        failed = asyncio.run(
            run_component(
                component,
                messages or [],
                codec_name=codec_name.value,
                timeout=timeout,
                quiet=Settings.quiet,
                trust=trust.value,
                policy=policy,
                data_dir=data_dir,
            )
        )
    if failed:
        raise typer.Exit(1)


def _source_tree(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        raise AirssysError(
            f"{what} live in the airssys source tree ({folder}), which this installation "
            "does not have: clone the repository to use them"
        )
    return folder


def _examples() -> list[Path]:
    return sorted(
        p for p in _source_tree(EXAMPLES, "the examples").iterdir() if (p / "main.py").is_file()
    )


def _child_env() -> dict[str, str]:
    """The environment for an example: the log options passed on."""
    env = dict(os.environ)
    if Settings.level is not None or Settings.debug:
        env["AIRSSYS_LOG_LEVEL"] = Settings.log_level().value
    if Settings.json_logs:
        env["AIRSSYS_LOG_JSON"] = "1"
    return env


def _run_example(path: Path) -> int:
    console.rule(f"[bold]{path.name}")
    command = [sys.executable, str(path / "main.py")]
    return subprocess.run(command, env=_child_env(), check=False).returncode


@examples_app.command("list", epilog=_GLOBAL_NOTE)
def examples_list() -> None:
    """List the examples."""
    examples = _examples()
    width = max((len(path.name) for path in examples), default=0) + 2
    for path in examples:
        doc = (path / "main.py").read_text().split('"""')[1].strip().splitlines()[0]
        console.print(Text.assemble((f"{path.name:<{width}}", "bold"), doc), soft_wrap=True)


@examples_app.command("run", epilog=_GLOBAL_NOTE)
def examples_run(name: Annotated[str, typer.Argument(help="e.g. 02-supervisor")]) -> None:
    """Run one example."""
    from ..build import require_builder

    matches = [p for p in _examples() if p.name == name or p.name.split("-", 1)[-1] == name]
    if not matches:
        known = ", ".join(p.name for p in _examples())
        raise AirssysError(f"no example named {name!r}; known: {known}")
    require_builder()  # every example builds its components
    code = _run_example(matches[0])
    if code:
        raise typer.Exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N


@examples_app.command("all", epilog=_GLOBAL_NOTE)
def examples_all() -> None:
    """Run every example in order; fails if any fails."""
    from ..build import require_builder

    examples = _examples()
    require_builder()
    failed = [p.name for p in examples if _run_example(p) != 0]
    if failed:
        err_console.print(Text.assemble(("failed: ", "red"), ", ".join(failed)))
        raise typer.Exit(1)
    console.print("[green]all examples passed[/green]")


_BENCH_PEERS: Final = ("extism", "pykka")


@app.command(epilog=_GLOBAL_NOTE)
def bench() -> None:
    """Run every benchmark in quick mode."""
    from ..build import require_builder

    scripts = sorted(_source_tree(BENCHES, "the benchmarks").glob("bench_*.py"))
    missing = [name for name in _BENCH_PEERS if importlib.util.find_spec(name) is None]
    if missing:
        raise AirssysError(
            f"the benchmarks compare against {' and '.join(missing)}, not installed: "
            "pip install 'airssys[dev]'"
        )
    require_builder()  # bench_startup builds a Python component
    failed = []
    for script in scripts:
        console.rule(f"[bold]{script.stem}")
        if subprocess.run([sys.executable, str(script), "--quick"], check=False).returncode:
            failed.append(script.stem)
    if failed:
        raise AirssysError(f"benchmarks failed: {', '.join(failed)}")


for _name, _command in NODE_COMMANDS:
    app.command(_name, epilog=_GLOBAL_NOTE)(_command)
register_keys(app, epilog=_GLOBAL_NOTE)
register_store(app, epilog=_GLOBAL_NOTE, running=running_packages)
register_init(app, epilog=_GLOBAL_NOTE)
register_completions(app, epilog=_GLOBAL_NOTE)
register_config(config_app, epilog=_GLOBAL_NOTE)


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move the global options to the front, so they work after the subcommand too.

    ``airssys demo --quiet`` becomes ``airssys --quiet demo``. Arguments after
    ``--`` are left alone (``airssys run comp -- --quiet`` sends "--quiet").
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _GLOBAL_FLAGS or arg.startswith(_GLOBAL_VALUED + "="):
            front.append(arg)
        elif arg == _GLOBAL_VALUED:
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _fail(message: str) -> int:
    err_console.print(
        Text.assemble(("error: ", "red"), truncate(message, _ERROR_LIMIT)), soft_wrap=True
    )
    return 1


_REPLAY_NEXT: Final = (
    " -- the component's code no longer reproduces what its journal recorded: run the "
    "version that wrote it (airssys rollback ADDRESS, or the previous package), check the "
    "journal (airssys journal check PATH), or move the journal aside to start afresh "
    "(docs/durability.md)"
)


def _next_step(exc: BaseException) -> str:
    """What to do about an error whose message cannot say it (a replay divergence,
    raised here, on a node, or as the cause of another)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReplayDivergence) or (
            isinstance(seen, ControlError) and seen.kind == "ReplayDivergence"
        ):
            return _REPLAY_NEXT
        seen = seen.__cause__ or seen.__context__
    return _REPLAY_NEXT if "ReplayDivergence" in str(exc) else ""


def _stdout_gone() -> None:
    """stdout's reader is gone: later writes (the interpreter's last flush among them)
    go nowhere instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(args: list[str]) -> int:
    try:
        result = app(args=args, prog_name="airssys", standalone_mode=False)
    except KeyboardInterrupt:
        result = INTERRUPTED
    except TyperException as exc:  # usage errors: the command's usage and the problem
        own_words(exc)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _fail(exc.format_message())
        return int(exc.exit_code) or 1
    except Abort:
        return _fail("aborted")
    except StdoutClosed:  # the reader closed stdout (`| head`): it has what it wanted
        _stdout_gone()
        return 0
    except (AirssysError, OSError, ValueError) as exc:
        if Settings.debug:
            raise
        return _fail((str(exc) or type(exc).__name__) + _next_step(exc))
    except Exception as exc:
        if Settings.debug:
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback)")
    if result == INTERRUPTED:
        err_console.print("interrupted", style="yellow", highlight=False)
    return int(result) if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: exits with the command's status (see the module docstring)."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(args)
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        err_console.print("interrupted", style="yellow", highlight=False)
        code = INTERRUPTED
    sys.exit(code)
