"""``airssys init NAME --lang python|js|wat|c|zig [--dir PATH]``: a new component project.

The project is made from the templates in ``airssys/templates/<lang>/`` (package
data), with ``{{name}}`` (the component's name) and ``{{module}}`` (the name as a
Python identifier) filled in, and builds and runs as created:

* ``python``: ``Component.toml``, ``app.py`` (an ``airssys.sdk`` handler that greets
  and counts), ``test_<module>.py`` (``airssys.testing.MockHost``), ``README.md``,
  ``.gitignore``; ``airssys build NAME && airssys run NAME '{"name": "Ada"}'``;
* ``wat``: ``Component.toml`` and ``NAME.wat`` (the airssys handler export in the
  WebAssembly text format, compiled at load); ``airssys run NAME '...'``;
* ``js``: ``Component.toml``, ``app.js``, ``app.test.mjs``, ``package.json``, ``wit/``
  (a copy of airssys's WIT, ``airssys.build.WIT_DIR``; the build uses its
  ``handler-only`` world), ``README.md``, ``.gitignore``; built with npm and
  ComponentizeJS (``npm install && npm run build``), which ``airssys build`` does
  not do: the command prints the npm commands, and says so when npm is missing;
* ``c`` and ``zig``: ``Component.toml``, ``app.c`` with ``airssys.h``/``airssys.c`` (or
  ``app.zig`` with ``airssys.zig``), ``test_<module>.py``, ``wit/``, ``README.md``,
  ``.gitignore``: an echo, built by ``airssys build`` with zig and wasm-tools from
  PyPI (the ``native`` extra; :mod:`airssys.build._native`).

The folder (default ``./NAME``) must not exist or be empty; the files are written to
a temporary folder beside it and renamed into place, so a failure leaves nothing
half made. A name that is not a valid component name is refused (the manifest's
rule: lowercase letters, digits, ``-`` and ``_``).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.text import Text

from ..errors import InitError as InitError
from ._output import out_console

__all__ = (
    "MAX_NAME",
    "TEMPLATES",
    "InitError",
    "Lang",
    "Project",
    "check_component_name",
    "create_project",
    "next_steps",
    "register_init",
)

TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"
# the longest file a project holds is test_<name>.py: keep it under NAME_MAX (255)
MAX_NAME: Final = 240
_EXAMPLE: Final = '{"name": "Ada"}'

_out = out_console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, soft_wrap=True, highlight=False)


class Lang(StrEnum):
    PYTHON = "python"
    JS = "js"
    WAT = "wat"
    C = "c"
    ZIG = "zig"


# template file -> the project's file ({name} and {module} filled in); js, c and zig projects
# also get a copy of airssys's WIT (airssys.build.WIT_DIR: the world the host implements)
_FILES: Final[dict[Lang, tuple[tuple[str, str], ...]]] = {
    Lang.PYTHON: (
        ("Component.toml", "Component.toml"),
        ("app.py.tmpl", "app.py"),
        ("test_app.py.tmpl", "test_{module}.py"),
        ("README.md", "README.md"),
        ("gitignore", ".gitignore"),
    ),
    Lang.JS: (
        ("Component.toml", "Component.toml"),
        ("app.js", "app.js"),
        ("app.test.mjs", "app.test.mjs"),
        ("package.json", "package.json"),
        ("README.md", "README.md"),
        ("gitignore", ".gitignore"),
    ),
    Lang.WAT: (
        ("Component.toml", "Component.toml"),
        ("component.wat", "{name}.wat"),
        ("README.md", "README.md"),
    ),
    Lang.C: (
        ("Component.toml", "Component.toml"),
        ("app.c", "app.c"),
        ("airssys.h", "airssys.h"),
        ("airssys.c", "airssys.c"),
        ("test_app.py.tmpl", "test_{module}.py"),
        ("README.md", "README.md"),
        ("gitignore", ".gitignore"),
    ),
    Lang.ZIG: (
        ("Component.toml", "Component.toml"),
        ("app.zig", "app.zig"),
        ("airssys.zig", "airssys.zig"),
        ("test_app.py.tmpl", "test_{module}.py"),
        ("README.md", "README.md"),
        ("gitignore", ".gitignore"),
    ),
}
_WITH_WIT: Final = frozenset({Lang.JS, Lang.C, Lang.ZIG})


@dataclass(frozen=True, slots=True)
class Project:
    """A project :func:`create_project` made: its folder and files (relative to it)."""

    name: str
    lang: Lang
    path: Path
    files: tuple[str, ...]


def check_component_name(name: str) -> str:
    """``name`` when it is a valid component name (the manifest's rule), else InitError."""
    from ..names import COMPONENT_NAME, COMPONENT_NAME_RULE, check_name

    check_name(name, "component name")  # InvalidName: the shared rule, one line
    if not COMPONENT_NAME.fullmatch(name):
        raise InitError(f"component name {name!r:.80} must be {COMPONENT_NAME_RULE}")
    if len(name) > MAX_NAME:
        raise InitError(
            f"component name {name[:40]!r}... has {len(name)} characters; at most "
            f"{MAX_NAME} here (the project's files are named after it)"
        )
    return name


def _render(text: str, name: str) -> str:
    return text.replace("{{name}}", name).replace("{{module}}", name.replace("-", "_"))


def _check_target(target: Path) -> None:
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise InitError(f"{target} exists and is not a folder: pick another --dir")
    if any(target.iterdir()):
        raise InitError(f"{target} is not empty: pick another --dir, or empty it first")


def _write(source: Path, dest: Path, name: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(_render(source.read_text(encoding="utf-8"), name), encoding="utf-8")
    return dest


def create_project(name: str, lang: Lang | str, directory: Path | None = None) -> Project:
    """Create the ``lang`` project for component ``name`` in ``directory`` (default
    ``./name``), which must not exist or be empty. Raises InitError (or InvalidName)."""
    from ..manifest import parse_manifest

    check_component_name(name)
    try:
        language = Lang(lang)
    except ValueError:
        raise InitError(
            f"unknown language {lang!r}; accepted: {', '.join(item.value for item in Lang)}"
        ) from None
    target = Path(directory) if directory is not None else Path(name)
    _check_target(target)
    place = Path(os.path.abspath(target))
    into_existing = place.is_dir()
    # staged on the same filesystem: inside the (empty) folder, else beside it
    home = place if into_existing else place.parent
    try:
        home.mkdir(parents=True, exist_ok=True)
        staging = home / f".airssys-init-{secrets.token_hex(4)}"
        staging.mkdir()  # mode from the umask, like any new folder
    except OSError as exc:
        raise InitError(f"cannot create {target}: {exc}") from exc
    try:
        files: list[Path] = []
        for source, dest in _FILES[language]:
            files.append(
                _write(TEMPLATES / language.value / source, staging / _fill(dest, name), name)
            )
        if language in _WITH_WIT:
            files += _copy_wit(staging / "wit", language)
        manifest = staging / "Component.toml"
        parse_manifest(manifest.read_text(encoding="utf-8"), path=manifest)  # valid as created
        relative = tuple(sorted(f.relative_to(staging).as_posix() for f in files))
        _place(staging, place, into_existing, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Project(name=name, lang=language, path=target, files=relative)


def _place(staging: Path, place: Path, into_existing: bool, target: Path) -> None:
    """Move the staged project to ``place``: one rename, or (into an existing empty
    folder) one rename per top-level entry."""
    try:
        if not into_existing:
            os.rename(staging, place)
            return
        entries = sorted(staging.iterdir())
        if any(p != staging for p in place.iterdir()):
            raise InitError(f"{target} is not empty: pick another --dir, or empty it first")
        for entry in entries:
            os.rename(entry, place / entry.name)
        staging.rmdir()
    except OSError as exc:
        if place.is_dir() and not into_existing:
            raise InitError(f"{target} is not empty: pick another --dir") from None
        raise InitError(f"cannot create {target}: {exc}") from exc


def _copy_wit(dest: Path, language: Lang) -> list[Path]:
    """The ``.wit`` files of airssys's world (with their dependencies), as they are."""
    from ..build import WIT_DIR

    sources = sorted(WIT_DIR.rglob("*.wit")) if WIT_DIR.is_dir() else []
    if not sources:
        raise InitError(
            f"the airssys WIT files ({WIT_DIR}) are not in this installation: a {language} project "
            "needs them; install airssys from its source tree"
        )
    copied = []
    for source in sources:
        target = dest / source.relative_to(WIT_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    return copied


def _fill(dest: str, name: str) -> str:
    return dest.format(name=name, module=name.replace("-", "_"))


def next_steps(project: Project) -> list[str]:
    """The commands that build, test and run the project, from the current folder."""
    where = shlex.quote(str(project.path))
    run = f"airssys run {where} {shlex.quote(_EXAMPLE)}"
    if project.lang in (Lang.PYTHON, Lang.C, Lang.ZIG):  # C, Zig: zig and wasm-tools
        return [f"airssys build {where}", run, f"python -m pytest {where}"]
    if project.lang is Lang.JS:
        npm = f"npm --prefix {where}"
        return [f"{npm} install", f"{npm} run build", f"{npm} test", run]
    return [run]


_NO_NPM: Final = (
    "npm is not installed: the project is created, but building it needs Node.js 18+ "
    "with npm (https://nodejs.org/), then the npm commands below"
)


def init(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="The component's name: lowercase letters, digits, - and _, starting "
            "with a letter or digit.",
            show_default=False,
        ),
    ],
    lang: Annotated[
        Lang | None,
        typer.Option(
            "--lang",
            "-l",
            case_sensitive=False,
            help="The component's language (default: the init.lang setting, python).",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "-d",
            metavar="PATH",
            help="The project's folder (default: ./NAME); it must not exist or be empty.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a component project that builds and runs as created.

    python: an airssys.sdk handler, its MockHost test and a README (airssys build
    NAME && airssys run NAME '{"name": "Ada"}'). wat: a hand-written component, run
    as it is. js: app.js, package.json and the WIT, built with npm and ComponentizeJS.
    c, zig: an echo in C or Zig, built by airssys build with zig and wasm-tools.
    """
    if lang is None:
        from .. import config

        lang = Lang(config.get("init.lang"))
    project = create_project(name, lang, directory)
    steps = next_steps(project)
    npm = shutil.which("npm") is not None if project.lang is Lang.JS else None
    if json_output:
        payload = {
            "name": project.name,
            "lang": project.lang.value,
            "path": str(project.path.absolute()),
            "files": list(project.files),
            "next": steps,
            "npm": npm,
        }
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _out.print(
            Text.assemble(
                ("created ", "green"),
                f"{project.lang.value} component ",
                (project.name, "bold"),
                f" in {project.path}{os.sep}",
            )
        )
        for file in project.files:
            _out.print(Text(f"  {file}", style="dim"))
        _out.print(Text("next:", style="bold"))
        for step in steps:
            _out.print(Text(f"  {step}"))
    if npm is False:
        _err.print(Text.assemble(("note: ", "yellow"), _NO_NPM))


def register_init(app: typer.Typer, *, epilog: str | None = None) -> None:
    """Add ``init`` to ``app`` (once)."""
    if "init" not in {info.name for info in app.registered_commands}:
        app.command("init", epilog=epilog)(init)
