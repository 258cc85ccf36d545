"""The airssys command: help everywhere, run, build, examples, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airssys.cli import app
from tests.conftest import ROOT, fixture_path

runner = CliRunner()
pytestmark = pytest.mark.timeout(900)


@pytest.mark.parametrize(
    "args",
    [[], ["demo"], ["run"], ["build"], ["bench"], ["examples"], ["examples", "run"]],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_run_sends_messages_and_prints_replies(
    shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(shared_cache))
    result = runner.invoke(app, ["run", str(fixture_path("echo")), '{"a": 1}', "plain text"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == ['{"a": 1}', '"plain text"']


def test_run_reads_messages_from_stdin(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(shared_cache))
    result = runner.invoke(app, ["run", str(fixture_path("echo"))], input="[1, 2]\n\n3\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == ["[1, 2]", "3"]


def test_build_reports_a_cache_hit(
    built_components: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRSSYS_CACHE_DIR", str(shared_cache))
    result = runner.invoke(app, ["build", str(built_components / "echo")])
    assert result.exit_code == 0, result.output
    assert "cache hit" in result.output


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from airssys.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        check=False,
    )


def test_errors_are_one_line_unless_debug(tmp_path: Path) -> None:
    bad = tmp_path / "Component.toml"
    bad.write_text('[component]\nname = "x"\nversion = "1"\nwasm = "x.wasm"\nflavour = "mint"\n')
    result = _cli("run", str(bad), "1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key component.flavour" in lines[0]
    assert "Traceback" not in result.stderr
    debug = _cli("--debug", "run", str(bad), "1")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_examples_list_names_the_ladder() -> None:
    result = runner.invoke(app, ["examples", "list"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.strip().splitlines()]
    assert names == ["00-echo", "01-counter", "02-supervisor", "03-request-reply", "04-pubsub"]


def test_examples_all_pass(built_components: Path, shared_cache: Path) -> None:
    result = _cli("examples", "all", env={"AIRSSYS_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all examples passed" in result.stdout
    assert result.stdout.count("all checks passed") == 5


def test_demo_command_passes() -> None:
    result = runner.invoke(app, ["demo", "--strategy", "rest_for_one"])
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output
