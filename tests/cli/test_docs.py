"""The README and docs/ say only what is true (issue 28, item 2): every command and
flag they name answers ``--help`` and lists the flag, every metric they name is on a
node's ``/metrics``, every Component.toml and deployment key in the reference tables
is one the parser knows, and every control op they list is one the node serves."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from airssys.cli import app
from airssys.errors import DeploymentError, ManifestError
from airssys.manifest import parse_manifest
from airssys.node import parse_deployment
from airssys.node._protocol import OPS
from tests.conftest import ROOT, fixture_path
from tests.node.conftest import NodeProcess, deployment_text, free_port, http_get

pytestmark = pytest.mark.timeout(300)

DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
_GLOBAL = frozenset({"--log-level", "--quiet", "--json-logs", "--debug", "--help", "--version"})
_SEPARATORS = re.compile(r"\s(?:&&|\|\||;|\|)\s")
_PROMPT = re.compile(r"^(?:\$\s+)?(?:[A-Z_]+=\S+\s+)*(?:\S*/)?airssys(?:\s+(.*))?$")


def _snippets() -> list[tuple[Path, str]]:
    """Code in the docs: each line of a fenced block, each inline code span."""
    found: list[tuple[Path, str]] = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
            found.extend((doc, line) for line in block.splitlines())
        prose = re.sub(r"```[^\n]*\n.*?```", "", text, flags=re.S)
        found.extend((doc, span) for span in re.findall(r"`([^`\n]+)`", prose))
    return found


def _command_lines() -> list[tuple[Path, str]]:
    """Every ``airssys ...`` command line the docs show (after a prompt, an
    environment assignment or a path such as ``.venv/bin/``; ``&&``/``|`` chains
    split)."""
    lines: list[tuple[Path, str]] = []
    for doc, snippet in _snippets():
        code = snippet.split(" #", 1)[0].strip()
        for part in _SEPARATORS.split(code):
            match = _PROMPT.match(part.strip())
            if match:
                lines.append((doc, (match.group(1) or "").strip()))
    return lines


def _tokens(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


@cache
def _documented() -> dict[tuple[str, ...], set[str]]:
    """Command path -> the flags the docs give it; unknown commands named as such."""
    root: Any = typer.main.get_command(app)
    commands: dict[tuple[str, ...], set[str]] = {}
    for doc, line in _command_lines():
        if re.match(r"node '", line):
            continue  # the node's own output quoted ("airssys node 'demo' ready: ...")
        command, path, flags = root, list[str](), set[str]()
        for token in _tokens(line.replace("[", " ").replace("]", " ").replace(",", " ")):
            if token.startswith("--"):
                flags.add(token.split("=", 1)[0])
            elif token.startswith("-") or flags:
                continue
            elif hasattr(command, "commands") and re.fullmatch(r"[a-z][a-z-]*", token):
                sub = command.commands.get(token)
                if sub is None:
                    commands.setdefault(("<unknown>", doc.name, *path, token), set())
                    break
                command = sub
                path.append(token)
            else:
                break  # an argument: the rest is arguments and flags
        commands.setdefault(tuple(path), set()).update(flags)
    return commands


def test_the_docs_name_many_commands() -> None:
    """The extraction finds what it should (else the checks below prove nothing)."""
    documented = _documented()
    for command in [("serve",), ("ask",), ("logs",), ("install",), ("config", "trust", "add")]:
        assert command in documented
    assert "--follow" in documented[("logs",)]


def test_every_documented_command_exists() -> None:
    unknown = [path[1:] for path in _documented() if path[:1] == ("<unknown>",)]
    assert unknown == []


def _help(path: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airssys.cli", *path, "--help"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )


def test_every_documented_command_and_flag_answers_help() -> None:
    """``airssys CMD --help`` (a subprocess each) for every command the docs name;
    each flag the docs give it is in that help (or is a global option)."""
    documented = {p: f for p, f in _documented().items() if p[:1] != ("<unknown>",)}
    with ThreadPoolExecutor(4) as pool:
        helps = dict(zip(documented, pool.map(_help, documented), strict=True))
    problems = []
    for path, result in helps.items():
        if re.search(r"`gc`|airssys gc\b", result.stdout):
            problems.append(f"airssys {' '.join(path)} --help names a gc command")
        if result.returncode != 0:
            problems.append(f"airssys {' '.join(path)} --help: exit {result.returncode}")
            continue
        for flag in sorted(documented[path] - _GLOBAL):
            if not re.search(rf"{re.escape(flag)}(?![\w-])", result.stdout):
                problems.append(f"airssys {' '.join(path)}: no {flag} in its --help")
    assert problems == []


# --- metrics ----------------------------------------------------------------------------

_METRIC = re.compile(r"\b((?:airssys|process)_[a-z0-9_]+)\b(?!\()")  # not a function
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _documented_metrics() -> set[str]:
    """Names the docs use as metrics: all of observability.md and the alerting rules;
    elsewhere, names on a line that speaks of metrics or shows a sample (a JetStream
    bucket named airssys_owners is no metric)."""
    names: set[str] = set()
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            if doc.name == "observability.md" or re.search(r"metric|\w\{", line, re.I):
                names.update(m for m in _METRIC.findall(line) if not m.endswith("_"))
    alerts = (ROOT / "docs" / "prometheus-alerts.yml").read_text()
    names.update(_METRIC.findall(alerts))
    functions = {  # airssys_dir() and the like, named in the docs without their ()
        name
        for source in (ROOT / "airssys").rglob("*.py")
        for name in re.findall(r"^def ((?:airssys|process)_\w+)\(", source.read_text(), re.M)
    }
    return names - functions


def test_every_documented_metric_is_on_a_nodes_metrics(tmp_path: Path) -> None:
    """A node's /metrics, scraped: each metric the docs (and the example alerting
    rules) name is a family there, or a sample of one."""
    documented = _documented_metrics()
    assert {"airssys_messages_total", "process_resident_memory_bytes"} <= documented
    port = free_port()
    body = f"""
[[supervisor]]
name = "app"

[[supervisor.component]]
id = "echo"
manifest = "{fixture_path("echo")}"
"""
    deployment = tmp_path / "deployment.toml"
    deployment.write_text(deployment_text(tmp_path / "run", port, body=body))
    node = NodeProcess(deployment, tmp_path / "run", port)
    try:
        node.wait_ready()
        node.request("ask", address="/app/echo", message='"x"')
        status, _kind, text = http_get(node.url("/metrics"))
    finally:
        node.stop()
    assert status == 200
    exported = set(re.findall(r"^# (?:HELP|TYPE) (\S+)", text, re.M))
    exported |= set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    missing = {
        name
        for name in documented
        if name not in exported
        and not any(name.endswith(s) and name[: -len(s)] in exported for s in _SUFFIXES)
    }
    assert missing == set()


# --- configuration keys -------------------------------------------------------------------

_KEY_ROW = re.compile(r"^\| `([a-z]+)\.([a-z-]+)` \|", re.M)
_UNKNOWN = re.compile(r"unknown (?:key|section)")
_WEIRD = "[1, 2]"  # no key takes a list of numbers: an error about the value, not the key


def _rows(doc: str) -> list[tuple[str, str]]:
    return _KEY_ROW.findall((ROOT / "docs" / doc).read_text())


def _manifest_error(section: str, key: str) -> str:
    head = '[component]\nname = "x"\nversion = "1"\nwasm = "x.wasm"\n'
    text = (
        f"{head}{key} = {_WEIRD}\n"
        if section == "component"
        else (f"{head}\n[{section}]\n{key} = {_WEIRD}\n")
    )
    try:
        parse_manifest(text)
    except ManifestError as exc:
        return str(exc)
    return ""


def test_every_component_toml_key_in_the_reference_is_known() -> None:
    rows = _rows("reference.md")
    assert ("limits", "timeout-ms") in rows and ("component", "source") in rows
    assert "unknown key" in _manifest_error("limits", "not-a-key")  # the check can fail
    unknown = [f"{s}.{k}" for s, k in rows if _UNKNOWN.search(_manifest_error(s, k))]
    assert unknown == []


def _deployment_error(table: str, key: str) -> str:
    node = '[node]\nname = "x"\n'
    supervisor = '[[supervisor]]\nname = "s"\n'
    component = f'[[supervisor.component]]\nid = "c"\nmanifest = "{fixture_path("echo")}"\n'
    weird = f"{key} = {_WEIRD}\n"
    if table == "node":
        text = node + weird
    elif table == "supervisor":
        text = node + supervisor + weird
    elif table == "cluster":
        text = node + "[cluster]\n" + weird
    else:
        text = node + supervisor + component + weird
    try:
        parse_deployment(text, check_files=False)
    except DeploymentError as exc:
        return str(exc)
    return ""


def test_every_deployment_key_in_node_md_is_known() -> None:
    rows = _rows("node.md")
    assert ("node", "shutdown-timeout") in rows and ("component", "execution") in rows
    assert "unknown key" in _deployment_error("node", "not-a-key")  # the check can fail
    unknown = [f"{t}.{k}" for t, k in rows if _UNKNOWN.search(_deployment_error(t, k))]
    assert unknown == []


def test_every_control_op_in_node_md_is_served() -> None:
    text = (ROOT / "docs" / "node.md").read_text()
    ops = re.findall(r"^\| `([a-z]+)` \| [^|]*\| `?[\[{]", text, re.M)
    assert {"ping", "status", "ask", "send"} <= set(ops)
    assert [op for op in ops if op not in OPS] == []


# --- an error with its next step -------------------------------------------------------------


def test_a_replay_divergence_says_what_to_do_next() -> None:
    """The docs promise next steps with ReplayDivergence: the entry point adds them,
    whether raised here or as the cause of another error."""
    script = (
        "import airssys.cli as c\n"
        "from airssys.errors import ReplayDivergence, UpdateFailed\n"
        "@c.app.command('diverge')\n"
        "def diverge() -> None:\n"
        "    try:\n"
        "        raise ReplayDivergence('the replay of /app/c made another call')\n"
        "    except ReplayDivergence as exc:\n"
        "        raise UpdateFailed('the new version cannot take over the journal') from exc\n"
        "c.main(['diverge'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith("error: the new version cannot take over the journal")
    assert "airssys rollback ADDRESS" in line and "airssys journal check PATH" in line
