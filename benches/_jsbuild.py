"""Build JavaScript components with npm and ComponentizeJS (for the tests and benchmarks).

``airssys build`` does not build JavaScript (a JS project builds itself with npm); the
tests and benchmarks that run JS components build them here, as a user would: the
template as ``airssys init --lang js`` creates it (``npm install && npm run build``),
and a handler-only app built against the ``handler-only`` world. One ``npm install``
serves every project of a run (their ``node_modules`` is a link to it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = (
    "HANDLER_ONLY_APP",
    "JsBuildError",
    "build_handler_only",
    "build_template",
    "finish",
    "npm",
)

HANDLER_ONLY_APP: Final = """\
// A component that implements only handler.handle-message (world handler-only):
// it answers every message with itself; sender "fail" fails the message.
export const handler = {
  handleMessage(sender, payload) {
    if (sender === "fail") {
      throw "asked to fail";
    }
    return payload;
  },
};
"""
_TIMEOUT_S: Final = 900.0


class JsBuildError(RuntimeError):
    """npm or ComponentizeJS failed; the message holds their output."""


def npm() -> str | None:
    """The npm executable, or None when Node.js is not installed."""
    return shutil.which("npm")


def _run(command: Sequence[str], cwd: Path) -> None:
    done = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise JsBuildError(f"{' '.join(command)} failed in {cwd}:\n{done.stdout}{done.stderr}")


def _install(project: Path, modules: Path) -> None:
    """``npm install`` into ``modules`` (once), linked as the project's node_modules."""
    npm_path = npm()
    if npm_path is None:
        raise JsBuildError("npm is not installed")
    if not (modules / "node_modules" / ".bin" / "componentize-js").exists():
        modules.mkdir(parents=True, exist_ok=True)
        package = json.loads((project / "package.json").read_text())
        (modules / "package.json").write_text(
            json.dumps({"private": True, "devDependencies": package["devDependencies"]})
        )
        _run([npm_path, "install", "--no-audit", "--no-fund", "--loglevel=error"], modules)
    link = project / "node_modules"
    if not link.exists():
        os.symlink(modules / "node_modules", link, target_is_directory=True)


def build_template(project: Path, modules: Path) -> subprocess.Popen[str]:
    """Start ``npm run build`` in a project ``airssys init --lang js`` made (the wasm is
    the manifest's); the caller waits with :func:`finish`."""
    _install(project, modules)
    npm_path = npm()
    assert npm_path is not None
    return _start([npm_path, "run", "build"], project)


def build_handler_only(template: Path, directory: Path, modules: Path) -> subprocess.Popen[str]:
    """Start building :data:`HANDLER_ONLY_APP` in ``directory`` against the handler-only
    world of ``template`` (a JS project: its ``wit/`` and ``package.json``) into
    ``directory/handler-only.wasm``; the caller waits with :func:`finish`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.js").write_text(HANDLER_ONLY_APP)
    shutil.copyfile(template / "package.json", directory / "package.json")
    _install(directory, modules)
    tool = directory / "node_modules" / ".bin" / "componentize-js"
    command = [str(tool), "app.js", "--wit", str(template / "wit"), "--world-name"]
    command += ["handler-only", "--disable", "http", "fetch-event", "--out", "handler-only.wasm"]
    return _start(command, directory)


def _start(command: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(command), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen[str]) -> None:
    """Wait for a build :func:`build_template` or :func:`build_handler_only` started."""
    try:
        output, _ = process.communicate(timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise JsBuildError(f"{process.args!r} ran past {_TIMEOUT_S:g} s:\n{output}") from None
    if process.returncode != 0:
        raise JsBuildError(f"{process.args!r} failed:\n{output}")
