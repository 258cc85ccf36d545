"""``airssys.config`` (the schema, the file, the environment) and ``airssys config
get|set|list|unset``: values typed and checked, their sources, the file written
atomically and private, TOML that reads back as written."""

from __future__ import annotations

import json
import math
import os
import stat
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airssys import config
from airssys.config import KEYS, Config, ConfigError, dumps

Cli = Callable[..., tuple[int, str, str]]

WIRE = """\
from airssys import cli
from airssys.cli import _keys
from airssys.cli._config import register_config

if "config" not in {group.name for group in cli.app.registered_groups}:
    _keys.register(cli.app)
register_config(_keys.config_app)
"""

# text TOML can hold: anything but lone surrogates (control characters are escaped)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
SCALAR = (
    TEXT
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
)
TABLE: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.dictionaries(TEXT, SCALAR, max_size=5),
    lambda tables: st.dictionaries(TEXT, SCALAR | tables, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no AIRSSYS_* or XDG_* variables, the config dir in tmp."""
    for name in [k for k in os.environ if k.startswith(("AIRSSYS_", "XDG_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """``airssys ARGS`` in this process: (exit status, stdout, stderr)."""
    from airssys import cli as cli_module

    exec(WIRE, {})

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_module._main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield run


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _file(home: Path) -> Path:
    return home / "config" / "config.toml"


# --- the schema and sources ----------------------------------------------------------


def test_the_file_lives_in_the_trust_stores_config_dir(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airssys.lifecycle import default_config_dir

    assert config.config_path() == _file(home)
    monkeypatch.delenv("AIRSSYS_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    assert config.config_path() == home / "xdg" / "airssys" / "config.toml"
    assert config.config_path().parent == default_config_dir()
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert config.config_path() == home / "home" / ".config" / "airssys" / "config.toml"


def test_defaults(home: Path) -> None:
    found = {s.key: s for s in config.settings()}
    assert list(found) == list(KEYS)
    assert all(s.source == "default" and s.origin == "" for s in found.values())
    assert config.get("data-dir") == home / "home" / ".local" / "share" / "airssys"
    assert config.get("cache-dir") == home / "home" / ".cache" / "airssys"
    assert config.get("log-level") == "warning"
    assert config.get("log-json") is False
    assert config.get("storage") == "sqlite"
    assert config.get("node.default") == "default"
    assert config.get("run.timeout") == 5.0
    assert config.get("trust.require-signed") is False
    assert config.get("init.lang") == "python"
    assert not _file(home).exists()  # reading creates nothing


def test_directory_defaults_follow_xdg(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    assert config.get("data-dir") == home / "data" / "airssys"
    assert config.get("cache-dir") == home / "cache" / "airssys"
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # invalid per the XDG spec: ignored
    assert config.get("data-dir") == home / "home" / ".local" / "share" / "airssys"


@pytest.mark.parametrize("xdg", ["relative", "", None])
def test_every_directory_follows_the_one_xdg_rule(
    home: Path, monkeypatch: pytest.MonkeyPatch, xdg: str | None
) -> None:
    """The config's defaults, the storage, the trust store and the builder agree: a
    relative (or empty) $XDG_*_HOME is ignored and the default under ~ used."""
    from airssys import _dirs
    from airssys.lifecycle import default_config_dir
    from airssys.storage import default_data_dir

    monkeypatch.delenv("AIRSSYS_CONFIG_DIR")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        if xdg is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, xdg)
    user = home / "home"
    assert config.config_path().parent == default_config_dir() == user / ".config" / "airssys"
    data = user / ".local" / "share" / "airssys"
    assert config.get("data-dir") == default_data_dir(create=False) == data
    assert config.get("cache-dir") == _dirs.airssys_dir("cache") == user / ".cache" / "airssys"
    monkeypatch.setenv("AIRSSYS_DATA_DIR", str(home / "mine"))
    assert config.get("data-dir") == default_data_dir(create=False) == home / "mine"


def test_the_environment_wins_over_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.set_value("storage", "lmdb")
    assert config.lookup("storage") == config.Setting("storage", "lmdb", "file", str(_file(home)))
    monkeypatch.setenv("AIRSSYS_STORAGE", "MEMORY")
    assert config.lookup("storage") == config.Setting(
        "storage", "memory", "env", "$AIRSSYS_STORAGE"
    )
    monkeypatch.setenv("AIRSSYS_STORAGE", "")  # empty: unset
    assert config.lookup("storage").source == "file"


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("data-dir", "AIRSSYS_DATA_DIR"),
        ("cache-dir", "AIRSSYS_CACHE_DIR"),
        ("log-level", "AIRSSYS_LOG_LEVEL"),
        ("log-json", "AIRSSYS_LOG_JSON"),
        ("node.default", "AIRSSYS_NODE_DEFAULT"),
        ("trust.require-signed", "AIRSSYS_TRUST_REQUIRE_SIGNED"),
    ],
)
def test_environment_variable_names(name: str, env: str) -> None:
    # the directories' and the log's variables are the ones airssys already reads
    assert KEYS[name].env == env


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("log-json", "1", True),  # what `airssys examples` passes on
        ("log-json", "Off", False),
        ("trust.require-signed", "yes", True),
        ("run.timeout", "0.25", 0.25),
        ("log-level", "DEBUG", "debug"),
        ("node.default", "edge-1.eu", "edge-1.eu"),
    ],
)
def test_environment_values_are_parsed(
    home: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, value: object
) -> None:
    monkeypatch.setenv(KEYS[name].env, text)
    assert config.get(name) == value


def test_a_relative_path_in_the_environment_is_made_absolute(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(home)
    monkeypatch.setenv("AIRSSYS_DATA_DIR", "data")
    assert config.get("data-dir") == home / "data"


def test_a_bad_environment_value_names_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRSSYS_RUN_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"\$AIRSSYS_RUN_TIMEOUT: 'soon' is not accepted"):
        config.get("run.timeout")


# --- setting and unsetting -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "value", "stored"),
    [
        ("log-level", "Info", "info", "info"),
        ("log-json", "true", True, True),
        ("storage", "lmdb", "lmdb", "lmdb"),
        ("node.default", "edge", "edge", "edge"),
        ("run.timeout", "30", 30.0, 30.0),
        ("trust.require-signed", "on", True, True),
        ("init.lang", "js", "js", "js"),
        ("data-dir", "/srv/airssys", Path("/srv/airssys"), "/srv/airssys"),
    ],
)
def test_set_get_round_trip(
    home: Path, name: str, text: str, value: object, stored: object
) -> None:
    written = config.set_value(name, text)
    assert written.value == value and written.source == "file"
    assert config.get(name) == value
    data = tomllib.loads(_file(home).read_text())
    head, _, rest = name.partition(".")
    assert (data[head][rest] if rest else data[head]) == stored


def test_paths_relative_and_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(home)
    assert config.set_value("data-dir", "rel/dir").value == home / "rel" / "dir"
    assert tomllib.loads(_file(home).read_text())["data-dir"] == str(home / "rel" / "dir")
    config.set_value("cache-dir", "~/cache")  # kept as given: it follows $HOME
    assert tomllib.loads(_file(home).read_text())["cache-dir"] == "~/cache"
    assert config.get("cache-dir") == home / "home" / "cache"


@pytest.mark.parametrize(
    ("name", "text", "accepted"),
    [
        ("storage", "postgres", "one of sqlite, lmdb, memory"),
        ("log-level", "loud", "one of trace, debug, info, warning, error, critical"),
        ("log-json", "maybe", "true or false"),
        ("run.timeout", "0", "above 0"),
        ("run.timeout", "nan", "above 0"),
        ("run.timeout", "inf", "above 0"),
        ("run.timeout", "1e9", "at most 86400"),
        ("node.default", "no/slash", "a node name"),
        ("node.default", "", "empty"),
        ("data-dir", "a\nb", "control characters"),
        ("init.lang", "rust", "one of python, js, wat"),
    ],
)
def test_bad_values_are_refused_naming_what_is_accepted(
    home: Path, name: str, text: str, accepted: str
) -> None:
    with pytest.raises(ConfigError, match=accepted):
        config.set_value(name, text)
    assert not _file(home).exists()


def test_unknown_keys_are_refused_naming_the_known_ones(home: Path) -> None:
    for call in (config.get, lambda k: config.set_value(k, "x"), config.unset, config.lookup):
        with pytest.raises(ConfigError, match="unknown setting 'colour'; known: data-dir, "):
            call("colour")


def test_unset_removes_the_key_and_empty_tables(home: Path) -> None:
    config.set_value("node.default", "edge")
    config.set_value("storage", "memory")
    assert config.unset("node.default") is True
    assert config.unset("node.default") is False
    assert tomllib.loads(_file(home).read_text()) == {"storage": "memory"}
    assert config.lookup("node.default").source == "default"


def test_unset_with_no_file(home: Path) -> None:
    assert config.unset("storage") is False
    assert not _file(home).exists()


# --- the file -------------------------------------------------------------------------


def test_the_file_is_private_and_written_atomically(home: Path) -> None:
    config.set_value("storage", "lmdb")
    path = _file(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    inode = path.stat().st_ino
    config.set_value("storage", "sqlite")
    assert path.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_symlinked_file_is_written_through_its_link(home: Path) -> None:
    real = home / "dotfiles" / "airssys.toml"
    real.parent.mkdir()
    real.write_text('storage = "lmdb"\n')
    real.chmod(0o600)
    _file(home).parent.mkdir(mode=0o700)
    _file(home).symlink_to(real)
    config.set_value("log-level", "info")
    assert _file(home).is_symlink()
    assert tomllib.loads(real.read_text()) == {"storage": "lmdb", "log-level": "info"}


def test_other_entries_are_kept_as_written(home: Path) -> None:
    path = _file(home)
    path.parent.mkdir(mode=0o700)
    path.write_text('node.default = "a"\n[trust]\nrequire-signed = true\n')
    path.chmod(0o600)
    assert config.get("node.default") == "a"  # a dotted key reads as the table form
    config.set_value("node.default", "b")
    assert tomllib.loads(path.read_text()) == {
        "node": {"default": "b"},
        "trust": {"require-signed": True},
    }


def test_a_file_others_can_write_is_refused(home: Path) -> None:
    config.set_value("storage", "lmdb")
    _file(home).chmod(0o666)
    with pytest.raises(ConfigError, match="writable by other users .* chmod 600"):
        config.get("storage")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("storage = \n", "is not valid TOML"),
        ('colour = "red"\n', "unknown setting 'colour'.*airssys config unset colour"),
        ("storage = 3\n", "storage: 3 is not accepted; storage takes one of"),
        ('log-json = "true"\n', "log-json: 'true' is not accepted"),
        ('data-dir = "relative"\n', "data-dir: 'relative' is not accepted.*absolute path"),
        ("[run]\ntimeout = -1\n", r"run\.timeout: -1 is not accepted"),
        ("[run]\ntimeout = 1" + "0" * 400 + "\n", r"run\.timeout: .* is not accepted"),
    ],
)
def test_a_bad_file_is_refused_naming_it(home: Path, text: str, problem: str) -> None:
    path = _file(home)
    path.parent.mkdir(mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=problem) as caught:
        config.get("log-level")
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unset_repairs_an_unknown_key(home: Path) -> None:
    path = _file(home)
    path.parent.mkdir(mode=0o700)
    path.write_text('colour = "red"\nstorage = "lmdb"\n')
    path.chmod(0o600)
    assert config.unset("colour") is True
    assert config.get("storage") == "lmdb"


def test_concurrent_writers_lose_nothing(home: Path) -> None:
    names = ["storage", "log-level", "node.default", "init.lang", "log-json", "run.timeout"]
    values = ["memory", "error", "n1", "wat", "true", "7"]
    errors: list[BaseException] = []

    def write(name: str, value: str) -> None:
        try:
            for _ in range(10):
                config.set_value(name, value)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=pair) for pair in zip(names, values, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {s.key for s in config.settings() if s.source == "file"} == set(names)


def test_the_typed_get_overloads_cover_every_key() -> None:
    from typing import get_args

    kinds = {
        config.PathKey: {"path"},
        config.BoolKey: {"bool"},
        config.FloatKey: {"seconds"},
        config.StrKey: {"choice", "node-name"},
    }
    covered = [name for alias in kinds for name in get_args(alias)]
    assert sorted(covered) == sorted(KEYS)
    for alias, allowed in kinds.items():
        assert {KEYS[name].kind for name in get_args(alias)} <= allowed


def test_all_names_every_public_attribute() -> None:
    import types

    def ours(value: object) -> bool:
        return (getattr(value, "__module__", config.__name__) or "") == config.__name__

    public = {
        attr
        for attr, value in vars(config).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and ours(value)
        and attr not in {"annotations", "TYPE_CHECKING", "Final"}
    }
    assert isinstance(config.__all__, tuple)
    assert public <= set(config.__all__)
    assert all(hasattr(config, attr) for attr in config.__all__)


def test_a_config_for_another_file_and_environment(tmp_path: Path) -> None:
    mine = Config(tmp_path / "c.toml", environ={"AIRSSYS_LOG_LEVEL": "error"})
    mine.set("storage", "memory")
    assert mine.get("storage") == "memory"
    assert mine.lookup("log-level").source == "env"
    assert repr(mine) == f"Config({str(tmp_path / 'c.toml')!r})"


# --- TOML writing ---------------------------------------------------------------------


@given(TABLE)
@settings(max_examples=300, deadline=None)
def test_dumps_reads_back_as_written(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(data)) == data


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_strings_with_any_character_round_trip(text: str) -> None:
    for data in ({"k": text}, {text: "v"}, {"t": {text: text}}):
        assert tomllib.loads(dumps(data)) == data


def test_dumps_escapes() -> None:
    text = 'a"b\\c\n\t\x00\x1f\x7f\x85é😀'
    out = dumps({"s": text})
    assert out == 's = "a\\"b\\\\c\\n\\t\\u0000\\u001f\\u007f\x85é😀"\n'
    assert tomllib.loads(out) == {"s": text}


def test_dumps_floats_and_limits() -> None:
    for number in (0.1, 1e-05, 1e16, -0.0, 5e-324, math.inf, -math.inf):
        assert tomllib.loads(dumps({"x": number})) == {"x": number}
    assert math.isnan(tomllib.loads(dumps({"x": math.nan}))["x"])
    with pytest.raises(ConfigError, match="64-bit"):
        dumps({"x": 2**63})
    with pytest.raises(ConfigError, match="lone surrogate"):
        dumps({"x": "\ud800"})
    with pytest.raises(ConfigError, match="cannot be written back"):
        dumps({"x": [1, 2]})
    assert dumps({}) == ""
    assert tomllib.loads(dumps({"empty": {}})) == {"empty": {}}


@given(
    st.text(
        st.characters(exclude_categories=["Cs", "Cc"]),
        min_size=1,
        max_size=30,
    ).filter(lambda t: not t.startswith("~"))
)
@settings(max_examples=100, deadline=None)
def test_any_path_text_survives_the_file(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mine = Config(Path(tmp) / "config.toml", environ={})
        expected = Path(os.path.abspath(text))
        assert mine.set("data-dir", text).value == expected
        assert mine.get("data-dir") == expected


# --- the commands ---------------------------------------------------------------------


def test_get_prints_the_bare_value(cli: Cli) -> None:
    assert cli("config", "get", "storage") == (0, "sqlite\n", "")
    assert cli("config", "get", "trust.require-signed") == (0, "false\n", "")
    assert cli("config", "get", "run.timeout") == (0, "5\n", "")


def test_set_then_get_and_list(cli: Cli, home: Path) -> None:
    code, out, err = cli("config", "set", "storage", "lmdb")
    assert code == 0, err
    assert "storage = lmdb" in out and str(_file(home)) in out
    assert cli("config", "get", "storage")[1] == "lmdb\n"
    code, out, _err = cli("config", "get", "storage", "--json")
    assert json.loads(out) | {"help": "", "accepted": ""} == {
        "key": "storage",
        "value": "lmdb",
        "source": "file",
        "origin": str(_file(home)),
        "env": "AIRSSYS_STORAGE",
        "help": "",
        "accepted": "",
    }
    code, out, err = cli("config", "list")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line.strip()}
    assert rows["storage"][:2] == ["lmdb", "file"]
    assert rows["log-level"] == ["warning", "default"]


def test_list_json_shows_every_source(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("config", "set", "storage", "lmdb")
    monkeypatch.setenv("AIRSSYS_LOG_LEVEL", "debug")
    code, out, err = cli("config", "list", "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["file"] == str(_file(home))
    found = {s["key"]: s for s in listing["settings"]}
    assert list(found) == list(KEYS)
    assert (found["storage"]["value"], found["storage"]["source"]) == ("lmdb", "file")
    assert (found["log-level"]["value"], found["log-level"]["source"]) == ("debug", "env")
    assert found["log-level"]["origin"] == "$AIRSSYS_LOG_LEVEL"
    assert (found["run.timeout"]["value"], found["run.timeout"]["source"]) == (5.0, "default")
    assert found["log-json"]["value"] is False


def test_set_warns_when_the_environment_overrides(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRSSYS_STORAGE", "memory")
    code, out, err = cli("config", "set", "storage", "lmdb", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["value"] == "lmdb" and result["effective"]["value"] == "memory"
    assert "$AIRSSYS_STORAGE is set and overrides it (now memory)" in _one_line(err)


def test_unset(cli: Cli, home: Path) -> None:
    cli("config", "set", "node.default", "edge")
    code, out, err = cli("config", "unset", "node.default")
    assert code == 0, err
    assert "unset node.default (now default: default)" in out
    code, out, err = cli("config", "unset", "node.default")
    assert code == 0
    assert out == ""
    assert f"node.default was not set in {_file(home)}" in _one_line(err)
    code, out, err = cli("config", "unset", "storage", "--json")
    assert json.loads(out)["removed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "colour"), "unknown setting 'colour'; known: data-dir"),
        (("set", "colour", "red"), "unknown setting 'colour'; known: data-dir"),
        (("unset", "colour"), "unknown setting 'colour'; known: data-dir"),
        (("set", "storage", "postgres"), "storage takes one of sqlite, lmdb, memory"),
        (("set", "run.timeout", "--", "-1"), "run.timeout takes a number of seconds"),
    ],
)
def test_errors_are_one_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli("config", *args)
    assert code == 1
    assert out == ""
    line = _one_line(err)
    assert line.startswith("error: ") and message in line


def test_a_broken_file_is_one_line_too(cli: Cli, home: Path) -> None:
    path = _file(home)
    path.parent.mkdir(mode=0o700)
    path.write_text("[[not = toml\n")
    path.chmod(0o600)
    code, _out, err = cli("config", "list")
    assert code == 1
    assert "is not valid TOML" in _one_line(err)


def test_every_command_has_help(cli: Cli) -> None:
    for command in ("get", "set", "unset", "list"):
        code, out, _err = cli("config", command, "--help")
        assert code == 0
        assert f"Usage: airssys config {command}" in " ".join(out.split())
    code, out, _err = cli("config", "set", "--help")
    assert "trust.require-signed" in out and "AIRSSYS_TRUST_REQUIRE_SIGNED" in out
