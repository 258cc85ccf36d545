"""``airssys init`` and ``airssys completions``: each language's project is created,
then built, run and tested as a user would (subprocesses, judged by exit status,
stdout and stderr), and every refusal is one line on stderr.

The commands are wired into the app here (``register_*``), whether or not
``airssys.cli`` already wires them; no test downloads anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airssys.cli._completions import completion_script
from airssys.cli._init import MAX_NAME, Lang, create_project
from airssys.manifest import load_manifest
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(900)

# what `airssys` would be once the lead wires the commands in: registering twice is a no-op
WIRE = """\
from airssys import cli
from airssys.cli import _keys
from airssys.cli._completions import register_completions
from airssys.cli._config import register_config
from airssys.cli._init import register_init

if "config" not in {group.name for group in cli.app.registered_groups}:
    _keys.register(cli.app)
register_config(_keys.config_app)
register_init(cli.app)
register_completions(cli.app)
"""
RUNNER = WIRE + "cli.main()\n"
EXAMPLE = '{"name": "x"}'

Cli = Callable[..., tuple[int, str, str]]


def _env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRSSYS_")}
    env["AIRSSYS_CONFIG_DIR"] = str(tmp_path / "config")
    return {**env, **(extra or {})}


def _airssys(
    *args: str, cwd: Path, env: dict[str, str], wired: bool = True
) -> subprocess.CompletedProcess[str]:
    """``airssys ARGS`` in a subprocess (``wired``: with init/completions/config added)."""
    command = [sys.executable, "-c", RUNNER] if wired else [sys.executable, "-m", "airssys.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    """``airssys ARGS`` in this process (wired as above), run from ``tmp_path``:
    (exit status, stdout, stderr)."""
    from airssys import cli as cli_module

    exec(WIRE, {})
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("AIRSSYS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_module._main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield run


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- python ------------------------------------------------------------------------------


def test_a_python_project_builds_runs_and_passes_its_own_tests(
    tmp_path: Path, shared_cache: Path
) -> None:
    env = _env(tmp_path, {"AIRSSYS_CACHE_DIR": str(shared_cache)})
    created = _airssys("init", "hello", "--lang", "python", cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    assert "airssys build hello" in created.stdout
    assert 'airssys run hello \'{"name": "Ada"}\'' in created.stdout
    project = tmp_path / "hello"
    assert _files(project) == [
        ".gitignore",
        "Component.toml",
        "README.md",
        "app.py",
        "test_hello.py",
    ]
    manifest = load_manifest(project)
    assert (manifest.name, manifest.source, manifest.wasm) == (
        "hello",
        project / "app.py",
        project / "hello.wasm",
    )

    built = _airssys("build", "hello", cwd=tmp_path, env=env, wired=False)
    assert built.returncode == 0, built.stderr
    assert (project / "hello.wasm").is_file()

    ran = _airssys("run", "hello", EXAMPLE, '"y"', "{}", cwd=tmp_path, env=env, wired=False)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(line) for line in ran.stdout.splitlines()] == [
        {"greeting": "Hello, x!", "count": 1},
        {"greeting": "Hello, y!", "count": 2},
        {"greeting": "Hello, world!", "count": 3},
    ]

    refused = _airssys("run", "hello", '{"name": 42}', cwd=tmp_path, env=env, wired=False)
    assert refused.returncode == 1
    assert 'HandlerError: send {"name": "..."} or a plain string' in refused.stderr

    # the project's own test, as its README says to run it
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=300,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_the_python_project_is_lint_clean_as_created(tmp_path: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed beside this Python")
    project = create_project("lint-me", "python", tmp_path / "lint-me").path
    rules = "E,F,W,I,B,UP,SIM,RUF"
    for command in (
        [str(ruff), "check", "--isolated", "--select", rules, "--line-length", "100", "."],
        [str(ruff), "format", "--isolated", "--line-length", "100", "--check", "."],
    ):
        result = subprocess.run(command, capture_output=True, text=True, cwd=project, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


# --- wat ---------------------------------------------------------------------------------


def test_a_wat_project_runs_as_created(tmp_path: Path, shared_cache: Path) -> None:
    env = _env(tmp_path, {"AIRSSYS_CACHE_DIR": str(shared_cache)})
    created = _airssys("init", "greeter", "--lang", "wat", cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "greeter"
    assert _files(project) == ["Component.toml", "README.md", "greeter.wat"]
    assert load_manifest(project).wasm == project / "greeter.wat"

    ran = _airssys("run", "greeter/", EXAMPLE, '"hi"', cwd=tmp_path, env=env, wired=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ['{"name": "x"}', '"hi"']


# --- js ----------------------------------------------------------------------------------


def test_a_js_project_prints_the_npm_commands(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: f"/usr/bin/{cmd}")
    code, out, err = cli("init", "js-app", "--lang", "js")
    assert code == 0, err
    assert err == ""
    project = tmp_path / "js-app"
    assert _files(project) == [
        ".gitignore",
        "Component.toml",
        "README.md",
        "app.js",
        "app.test.mjs",
        "package.json",
        "wit/airssys.wit",
        "wit/deps/keyvalue/atomic.wit",
        "wit/deps/keyvalue/batch.wit",
        "wit/deps/keyvalue/store.wit",
        "wit/deps/keyvalue/watch.wit",
        "wit/deps/keyvalue/world.wit",
    ]
    for step in (
        "npm --prefix js-app install",
        "npm --prefix js-app run build",
        'airssys run js-app \'{"name": "Ada"}\'',
    ):
        assert step in out
    package = json.loads((project / "package.json").read_text())
    assert package["name"] == "js-app"
    assert "@bytecodealliance/componentize-js" in package["devDependencies"]
    build = package["scripts"]["build"]
    assert "--world-name handler-text" in build
    assert "--disable http fetch-event" in build
    assert "--out js-app.wasm" in build
    # the world the build names is in the WIT it copied, which is airssys's own
    assert "world handler-text {" in (project / "wit" / "airssys.wit").read_text()
    assert (project / "wit" / "airssys.wit").read_text() == (
        ROOT / "wit" / "airssys.wit"
    ).read_text()
    assert load_manifest(project).wasm == project / "js-app.wasm"
    readme = (project / "README.md").read_text()
    assert "npm install" in readme and "npm run build" in readme


def test_a_js_project_without_npm_says_so_in_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None)
    code, out, err = cli("init", "js-app", "--lang", "js")
    assert code == 0
    line = _one_error_line(err)
    assert "npm is not installed" in line and "the project is created" in line
    assert (tmp_path / "js-app" / "package.json").is_file()
    assert "npm --prefix js-app install" in out  # what to do once it is

    code, out, err = cli("init", "js-too", "--lang", "js", "--json")
    assert code == 0
    assert json.loads(out)["npm"] is False
    assert "npm is not installed" in _one_error_line(err)


def test_the_js_handler_passes_its_own_tests_under_node(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    if int(version.stdout.strip().lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"node {version.stdout.strip()} is older than 20")
    project = create_project("js-app", Lang.JS, tmp_path / "js-app").path
    # `npm test` is `node --test`: no install needed, app.js imports nothing
    result = subprocess.run(
        [node, "--test"], capture_output=True, text=True, cwd=project, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


# --- every language ----------------------------------------------------------------------


@pytest.mark.parametrize("lang", list(Lang))
def test_every_template_is_filled_in(tmp_path: Path, lang: Lang) -> None:
    project = create_project("my-comp_1", lang, tmp_path / "p")
    assert project.path == tmp_path / "p"
    assert list(project.files) == _files(project.path)
    for file in project.files:
        text = (project.path / file).read_text()
        assert "{{" not in text and "}}" not in text, file
    manifest = load_manifest(project.path)
    assert manifest.name == "my-comp_1"
    assert not list(tmp_path.glob(".airssys-init-*"))  # no staging left behind
    if lang is Lang.PYTHON:
        assert "test_my_comp_1.py" in project.files


def test_the_language_defaults_to_the_init_lang_setting(cli: Cli, tmp_path: Path) -> None:
    code, _out, err = cli("config", "set", "init.lang", "wat")
    assert code == 0, err
    code, _out, err = cli("init", "plain")
    assert code == 0, err
    assert (tmp_path / "plain" / "plain.wat").is_file()
    code, _out, err = cli("init", "py", "--lang", "python")
    assert code == 0, err
    assert (tmp_path / "py" / "app.py").is_file()


def test_init_json(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("init", "thing", "--lang", "wat", "--dir", "sub/dir", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["path"] == str(tmp_path / "sub" / "dir")
    assert result["files"] == ["Component.toml", "README.md", "thing.wat"]
    assert result["lang"] == "wat" and result["npm"] is None
    assert result["next"] == ['airssys run sub/dir \'{"name": "Ada"}\'']


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Hello", "lowercase"),
        ("a/b", "contains '/'"),
        ("", "empty"),
        ("..", "reserved"),
        ("-x", "starting with a letter or digit"),
        ("a b", "lowercase"),
        ("é", "lowercase"),
        ("a\x01", "control character"),
        ("x" * (MAX_NAME + 1), f"at most {MAX_NAME}"),
        ("x" * 300, "longer than 255"),
    ],
)
def test_a_bad_name_is_refused_in_one_line(cli: Cli, tmp_path: Path, name: str, why: str) -> None:
    code, _out, err = cli("init", "--dir", "target", "--", name)
    assert code == 1
    assert why in _one_error_line(err)
    assert not (tmp_path / "target").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_non_empty_folder_is_refused(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    code, _out, err = cli("init", "taken")
    assert code == 1
    assert "taken is not empty" in _one_error_line(err)
    assert _files(tmp_path / "taken") == ["notes.txt"]

    (tmp_path / "file").write_text("x")
    code, _out, err = cli("init", "ok", "--dir", "file")
    assert code == 1
    assert "exists and is not a folder" in _one_error_line(err)
    assert not list(tmp_path.glob(".airssys-init-*"))


def test_an_empty_folder_is_used_even_the_current_one(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = cli("init", "one", "--dir", "empty", "--lang", "wat")
    assert code == 0, err
    assert _files(tmp_path / "empty") == ["Component.toml", "README.md", "one.wat"]

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, err = cli("init", "two", "--dir", ".", "--lang", "wat")
    assert code == 0, err
    assert _files(here) == ["Component.toml", "README.md", "two.wat"]
    assert 'airssys run . \'{"name": "Ada"}\'' in out


def test_an_unknown_language_is_a_usage_error(cli: Cli) -> None:
    code, _out, err = cli("init", "x", "--lang", "cobol")
    assert code == 2
    assert "cobol" in err and "python" in err


def test_create_project_refuses_an_unknown_language(tmp_path: Path) -> None:
    from airssys.cli._init import InitError

    with pytest.raises(InitError, match="accepted: python, js, wat"):
        create_project("x", "cobol", tmp_path / "x")


# --- completions -------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell", "pwsh"])
def test_completions_prints_the_script(cli: Cli, shell: str) -> None:
    code, out, err = cli("completions", shell)
    assert code == 0, err
    assert "_AIRSSYS_COMPLETE" in out
    assert out == completion_script(shell)


def test_the_bash_script_is_valid_bash_and_registers_airssys(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    result = _airssys("completions", "bash", cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _airssys_completion airssys" in result.stdout
    script = tmp_path / "airssys.bash"
    script.write_text(result.stdout)
    registered = subprocess.run(
        [bash, "--norc", "-c", f"source {script} && complete -p airssys"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr
    assert "_airssys_completion" in registered.stdout


def test_completion_completes_the_new_commands(tmp_path: Path) -> None:
    def complete(words: str) -> list[str]:
        env = _env(
            tmp_path,
            {
                "_AIRSSYS_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split(" ")) - 1),
            },
        )
        result = _airssys(cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("airssys comp") == ["completions"]
    assert complete("airssys init x --lang ") == ["python", "js", "wat", "c", "zig"]
    assert complete("airssys config get node") == ["node.default"]


def test_an_unknown_shell_is_refused(cli: Cli) -> None:
    code, out, err = cli("completions", "tcsh")
    assert code == 2
    assert out == ""
    assert "tcsh" in err and "bash" in err
