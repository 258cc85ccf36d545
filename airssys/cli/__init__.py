"""The ``airssys`` command: demo, run, build, examples, bench.

Errors are one clear line (exit code 1) unless ``--debug`` is given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.text import Text

from .. import codec
from ..errors import AirssysError

__all__ = ("app", "main")

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
BENCHES = ROOT / "benches"

app = typer.Typer(
    name="airssys",
    help="An actor-hosted WebAssembly component runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
examples_app = typer.Typer(help="The examples ladder: list, run one, or run all.")
app.add_typer(examples_app, name="examples")
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and logs.")] = False,
) -> None:
    _state["debug"] = debug
    if not debug:
        _quiet()


@app.command()
def demo(
    strategy: Annotated[
        str, typer.Option(help="one_for_one, one_for_all or rest_for_one")
    ] = "one_for_one",
) -> None:
    """The supervisor demo: a crash, the restart, and the strategy at work."""
    from .._demo import main as demo_main

    code = demo_main(["--strategy", strategy, *(["--verbose"] if _state["debug"] else [])])
    if code:
        raise typer.Exit(code)


@app.command()
def build(
    path: Annotated[Path, typer.Argument(help="A component directory or its Component.toml")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even on a cache hit")] = False,
) -> None:
    """Build a Python component (cached by its sources and the toolchain)."""
    from ..build import build_component

    with console.status(f"building {path}") as status:
        result = build_component(path, force=force, progress=lambda m: status.update(m))
    how = "cache hit" if result.cached else f"built in {result.seconds:.1f} s"
    console.print(Text.assemble((result.name, "green"), f": {result.wasm} ({how})"))


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@app.command()
def run(
    component: Annotated[Path, typer.Argument(help="Component.toml, its directory, or .wasm/.wat")],
    messages: Annotated[
        list[str] | None,
        typer.Argument(help="Messages (JSON, else text); none: one per stdin line"),
    ] = None,
    codec_name: Annotated[str, typer.Option("--codec", help="json, messagepack or raw")] = "json",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each reply")] = 5.0,
) -> None:
    """Spawn a component under a supervisor, send it messages, print the replies."""
    lines = messages if messages else [line.rstrip("\n") for line in sys.stdin if line.strip()]
    asyncio.run(_run(component, lines, codec_name, timeout))


async def _run(component: Path, lines: list[str], codec_name: str, timeout: float) -> None:
    from ..actors import open_system
    from ..manifest import load_manifest

    if component.is_dir() or component.suffix == ".toml":
        manifest = load_manifest(component)
        if manifest.source is not None:
            from ..build import build_component

            with console.status(f"building {manifest.name}"):
                build_component(manifest.path)
    async with open_system() as system:
        with console.status("starting"):
            spec = system.component_spec("main", component)
            await system.spawn_supervisor([spec], name="run")
        for line in lines:
            value = line.encode() if codec_name == "raw" else _parse(line)
            reply = await system.ask("/run/main", codec.encode(value, codec_name), timeout=timeout)
            if reply is None:
                console.print("[dim](no reply)[/dim]")
            else:
                shown = codec.decode(reply)
                text = json.dumps(shown) if not isinstance(shown, bytes) else repr(shown)
                console.print(text, markup=False, highlight=False, soft_wrap=True)


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if (p / "main.py").is_file())


def _run_example(path: Path) -> int:
    console.rule(f"[bold]{path.name}")
    return subprocess.run([sys.executable, str(path / "main.py")], check=False).returncode


@examples_app.command("list")
def examples_list() -> None:
    """List the examples."""
    for path in _examples():
        doc = (path / "main.py").read_text().split('"""')[1].strip().splitlines()[0]
        console.print(Text.assemble((f"{path.name:<18}", "bold"), doc), soft_wrap=True)


@examples_app.command("run")
def examples_run(name: Annotated[str, typer.Argument(help="e.g. 02-supervisor")]) -> None:
    """Run one example."""
    matches = [p for p in _examples() if p.name == name or p.name.split("-", 1)[-1] == name]
    if not matches:
        known = ", ".join(p.name for p in _examples())
        raise AirssysError(f"no example named {name!r}; known: {known}")
    code = _run_example(matches[0])
    if code:
        raise typer.Exit(code)


@examples_app.command("all")
def examples_all() -> None:
    """Run every example in order; fails if any fails."""
    failed = [p.name for p in _examples() if _run_example(p) != 0]
    if failed:
        err_console.print(f"[red]failed:[/red] {', '.join(failed)}")
        raise typer.Exit(1)
    console.print("[green]all examples passed[/green]")


@app.command()
def bench() -> None:
    """Run every benchmark in quick mode."""
    failed = []
    for script in sorted(BENCHES.glob("bench_*.py")):
        console.rule(f"[bold]{script.stem}")
        if subprocess.run([sys.executable, str(script), "--quick"], check=False).returncode:
            failed.append(script.stem)
    if failed:
        raise AirssysError(f"benchmarks failed: {', '.join(failed)}")


def main() -> None:
    """Entry point: one clear line on errors unless --debug."""
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (AirssysError, OSError, ValueError) as exc:
        if _state["debug"]:
            raise
        err_console.print(Text.assemble(("error: ", "red"), str(exc)), soft_wrap=True)
        sys.exit(1)
    except Exception as exc:  # usage errors from the command-line parser
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            sys.exit(int(exc.exit_code))
        if type(exc).__name__ == "Abort":
            sys.exit(130)
        raise
