"""airssys's settings: a small fixed schema, a TOML file, environment overrides.

    from airssys import config

    config.get("storage")            # "sqlite", unless the file or $AIRSSYS_STORAGE says else
    config.get("data-dir")           # a Path
    config.lookup("log-level")       # Setting(key=..., value=..., source="env", origin=...)

Where a value comes from, the first that has one wins:

1. the environment: ``AIRSSYS_<KEY>``, the key upper-cased with dots and dashes as
   underscores (``trust.require-signed`` -> ``$AIRSSYS_TRUST_REQUIRE_SIGNED``); an
   empty variable counts as unset;
2. the file ``<config>/config.toml``, where ``<config>`` is the directory the trust
   store uses too (:mod:`airssys._dirs`: ``$AIRSSYS_CONFIG_DIR``, else
   ``$XDG_CONFIG_HOME/airssys``, else ``~/.config/airssys``);
3. the default in :data:`KEYS`.

The file is plain TOML: top-level keys, and a table per dotted key's first part
(``[node]`` then ``default = "edge"``; a dotted ``node.default = "edge"`` is read too).
Reading it refuses, naming the file, the key and what is accepted (a
:class:`ConfigError`): TOML that does not parse, an unknown key, a bad value, and a
file other users could write (it decides, e.g., whether signatures are required).
:func:`set_value` and :func:`unset` rewrite it atomically (a temporary file and a
rename, mode 0600, under a lock), keeping every other entry as it was; a symlinked
file is written through its link.

Nothing here is cached: each :func:`get` reads the environment and the file, so read
a setting once per command, not per message.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, overload

from . import _dirs
from .errors import ConfigError as ConfigError
from .names import BAD_CHAR, is_node_name
from .names import NODE_NAME_RULE as _NODE_NAME_RULE
from .units import show as _clip

__all__ = (
    "CONFIG_FILE",
    "KEYS",
    "Config",
    "ConfigError",
    "Key",
    "Setting",
    "Source",
    "Value",
    "config_path",
    "dumps",
    "get",
    "key",
    "lookup",
    "set_value",
    "settings",
    "unset",
)

CONFIG_FILE: Final = "config.toml"
_MAX_FILE: Final = 1024 * 1024
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_MAX_SECONDS: Final = 86_400.0

Value = str | bool | float | Path
Source = Literal["default", "file", "env"]
PathKey = Literal["data-dir", "cache-dir"]
BoolKey = Literal["log-json", "trust.require-signed"]
FloatKey = Literal["run.timeout"]
StrKey = Literal["log-level", "storage", "node.default", "init.lang"]


# --- the schema --------------------------------------------------------------------


def _xdg(kind: _dirs.Kind) -> Callable[[Mapping[str, str]], Value]:
    """The default of a directory key: the XDG rule (``$AIRSSYS_<KIND>_DIR`` is the
    key's own environment variable, read before any default)."""
    return lambda environ: _dirs.xdg_dir(kind, environ)


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: its name, type, default and help."""

    name: str
    kind: Literal["path", "choice", "bool", "seconds", "node-name"]
    help: str
    default: Callable[[Mapping[str, str]], Value]
    """The default, given the environment (XDG directories depend on it)."""
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        """The environment variable that overrides the file: ``AIRSSYS_<KEY>``."""
        return "AIRSSYS_" + re.sub(r"[.-]", "_", self.name).upper()

    @property
    def accepted(self) -> str:
        """What the key accepts, for help and errors."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false (also 1/0, yes/no, on/off)"
        if self.kind == "seconds":
            return f"a number of seconds, above 0 and at most {_MAX_SECONDS:g}"
        if self.kind == "node-name":
            return f"a node name: {_NODE_NAME_RULE}"
        return "a directory: an absolute path, or one starting with ~"

    def parse(self, text: str, *, where: str) -> Value:
        """A value given as text (the command line, the environment): checked and typed.

        A relative path is made absolute against the working directory.
        """
        value = self._text(text, where)
        if self.kind == "bool":
            lowered = value.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise self._bad(where, text)
        if self.kind == "seconds":
            try:
                number = float(value)
            except ValueError:
                raise self._bad(where, text) from None
            return self._seconds(number, where, text)
        if self.kind == "path":
            return Path(os.path.abspath(Path(value).expanduser()))
        return self._word(value, where, text)

    def coerce(self, value: object, *, where: str) -> Value:
        """A value read from the TOML file: its TOML type must fit the key."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
        elif self.kind == "seconds":
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:  # a TOML integer past a float's range
                    raise self._bad(where, value) from None
                return self._seconds(number, where, value)
        elif isinstance(value, str):
            text = self._text(value, where)
            if self.kind != "path":
                return self._word(text, where, value)
            path = Path(text).expanduser()
            if path.is_absolute():
                return path
        raise self._bad(where, value)

    def to_toml(self, value: Value) -> str | bool | float:
        """What the file holds for ``value``."""
        if isinstance(value, Path):
            return str(value)
        return value

    def show(self, value: Value) -> str:
        """``value`` as text, as ``config get`` prints it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def _bad(self, where: str, value: object) -> ConfigError:
        return ConfigError(
            f"{where}: {_clip(value)} is not accepted; {self.name} takes {self.accepted}"
        )

    def _text(self, value: str, where: str) -> str:
        if not value:
            raise ConfigError(f"{where}: the value is empty; {self.name} takes {self.accepted}")
        bad = BAD_CHAR.search(value)
        if bad is not None:
            raise ConfigError(
                f"{where}: {_clip(value)} holds {bad.group()!r} at index {bad.start()} "
                f"(no control characters or lone surrogates); {self.name} takes {self.accepted}"
            )
        return value

    def _seconds(self, number: float, where: str, given: object) -> float:
        if not (math.isfinite(number) and 0 < number <= _MAX_SECONDS):
            raise self._bad(where, given)
        return number

    def _word(self, value: str, where: str, given: object) -> str:
        if self.kind == "choice":
            lowered = value.lower()
            if lowered in self.choices:
                return lowered
            raise self._bad(where, given)
        if is_node_name(value):
            return value
        raise self._bad(where, given)


def _const(value: Value) -> Callable[[Mapping[str, str]], Value]:
    return lambda _environ: value


KEYS: Final[Mapping[str, Key]] = {
    k.name: k
    for k in (
        Key(
            "data-dir",
            "path",
            "Where key-value storage lives (sqlite and lmdb files).",
            _xdg("data"),
        ),
        Key(
            "cache-dir",
            "path",
            "Where compiled components and Python builds are cached.",
            _xdg("cache"),
        ),
        Key(
            "log-level",
            "choice",
            "The CLI's log level on stderr (--log-level wins).",
            _const("warning"),
            ("trace", "debug", "info", "warning", "error", "critical"),
        ),
        Key("log-json", "bool", "Log lines as JSON objects (--json-logs).", _const(False)),
        Key(
            "storage",
            "choice",
            "The key-value storage backend.",
            _const("sqlite"),
            ("sqlite", "lmdb", "memory"),
        ),
        Key(
            "node.default",
            "node-name",
            "The node the client commands talk to when --node and --socket are not given.",
            _const("default"),
        ),
        Key(
            "run.timeout",
            "seconds",
            "Seconds `airssys run` waits for each reply (--timeout wins).",
            _const(5.0),
        ),
        Key(
            "trust.require-signed",
            "bool",
            "Refuse components that no trusted key signed.",
            _const(False),
        ),
        Key(
            "init.lang",
            "choice",
            "The language `airssys init` uses when --lang is not given.",
            _const("python"),
            ("python", "js", "wat", "c", "zig"),
        ),
    )
}


def key(name: str) -> Key:
    """The schema entry for ``name``; a :class:`ConfigError` naming the known keys."""
    found = KEYS.get(name)
    if found is None:
        raise ConfigError(f"unknown setting {_clip(name)}; known: {', '.join(KEYS)}")
    return found


@dataclass(frozen=True, slots=True)
class Setting:
    """A key's value and where it came from: ``source`` is default, file or env;
    ``origin`` names the file or the variable (empty for a default)."""

    key: str
    value: Value
    source: Source
    origin: str

    def to_dict(self) -> dict[str, Any]:
        schema = KEYS[self.key]
        value = str(self.value) if isinstance(self.value, Path) else self.value
        return {
            "key": self.key,
            "value": value,
            "source": self.source,
            "origin": self.origin,
            "env": schema.env,
            "accepted": schema.accepted,
            "help": schema.help,
        }


# --- TOML writing ------------------------------------------------------------------

_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string; lone surrogates (not encodable) are refused."""
    out = ['"']
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            raise ConfigError(f"{_clip(text)} holds a lone surrogate, which TOML cannot hold")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _toml_string(name)


def _toml_value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ConfigError(f"{where}: {value} does not fit TOML's 64-bit integers")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # '1e-05', '0.1': both TOML floats
    if isinstance(value, str):
        return _toml_string(value)
    raise ConfigError(
        f"{where}: a {type(value).__name__} cannot be written back (the file holds only "
        "strings, numbers and booleans): edit the file by hand"
    )


def dumps(data: Mapping[str, object]) -> str:
    """``data`` as TOML: scalars (str, int, float, bool) at the top, then a table per
    nested mapping. What :func:`tomllib.loads` reads back is ``data`` again."""
    lines: list[str] = []
    _dump_table(data, (), lines)
    return "\n".join(lines).lstrip("\n") + ("\n" if lines else "")


def _dump_table(data: Mapping[str, object], prefix: tuple[str, ...], lines: list[str]) -> None:
    tables = [(name, value) for name, value in data.items() if isinstance(value, Mapping)]
    scalars = [(name, value) for name, value in data.items() if not isinstance(value, Mapping)]
    if prefix and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_toml_key(part) for part in prefix) + "]")
    for name, value in scalars:
        where = ".".join((*prefix, name))
        lines.append(f"{_toml_key(name)} = {_toml_value(value, where)}")
    for name, value in tables:
        _dump_table(value, (*prefix, name), lines)


# --- the file ----------------------------------------------------------------------


def config_path() -> Path:
    """``<config>/config.toml`` (see the module docstring); not created."""
    return _dirs.airssys_dir("config") / CONFIG_FILE


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _read_raw(path: Path) -> dict[str, Any]:
    """The file's TOML as nested dicts ({} when there is no file), after the safety check."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
    if st.st_mode & 0o022:
        raise ConfigError(
            f"the config file {path} is writable by other users (mode {st.st_mode & 0o777:o}): "
            f"refusing to read it; chmod 600 {path}"
        )
    if hasattr(os, "getuid") and st.st_uid not in (os.getuid(), 0):
        raise ConfigError(
            f"the config file {path} belongs to another user (uid {st.st_uid}): refusing to read it"
        )
    if st.st_size > _MAX_FILE:
        raise ConfigError(f"the config file {path} is larger than {_MAX_FILE} bytes")
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the config file {path} is not UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    except IsADirectoryError:
        raise ConfigError(f"the config file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from exc


def _file_values(path: Path) -> dict[str, Value]:
    """The file's settings, every one checked."""
    values: dict[str, Value] = {}
    for name, raw in _flatten(_read_raw(path)).items():
        schema = KEYS.get(name)
        if schema is None:
            raise ConfigError(
                f"{path}: unknown setting {_clip(name)}; known: {', '.join(KEYS)} "
                f"(remove it: airssys config unset {name})"
            )
        values[name] = schema.coerce(raw, where=f"{path}: {name}")
    return values


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``<directory>/.config.toml.lock`` (one writer at a time)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fd = os.open(directory / f".{CONFIG_FILE}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- reading and writing settings ----------------------------------------------------


class Config:
    """The settings as seen from one file and one environment (default: the user's)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else config_path()
        self.environ: Mapping[str, str] = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return f"Config({str(self.path)!r})"

    def lookup(self, name: str, *, _file: Mapping[str, Value] | None = None) -> Setting:
        """The value of ``name`` and where it came from (environment, file, default)."""
        schema = key(name)
        text = self.environ.get(schema.env)
        if text:
            value = schema.parse(text, where=f"${schema.env}")
            return Setting(name, value, "env", f"${schema.env}")
        values = _file_values(self.path) if _file is None else _file
        if name in values:
            return Setting(name, values[name], "file", str(self.path))
        return Setting(name, schema.default(self.environ), "default", "")

    def get(self, name: str) -> Value:
        return self.lookup(name).value

    def settings(self) -> list[Setting]:
        """Every key, in schema order (the file read once)."""
        values = _file_values(self.path)
        return [self.lookup(name, _file=values) for name in KEYS]

    def set(self, name: str, text: str) -> Setting:
        """Check ``text`` for ``name`` and write it to the file; returns the file's setting
        (which an environment variable may still override: see :meth:`lookup`)."""
        schema = key(name)
        value = schema.parse(text, where=name)
        stored: str | bool | float = schema.to_toml(value)
        if schema.kind == "path" and text.startswith("~"):
            stored = text  # kept as given, so that it follows $HOME
            value = schema.coerce(text, where=name)

        def change(data: dict[str, Any]) -> bool:
            _put(data, name, stored)
            return True

        self._update(change)
        return Setting(name, value, "file", str(self.path))

    def unset(self, name: str) -> bool:
        """Remove ``name`` from the file; False when it was not there. A key the schema
        does not know may be removed too (to repair the file), if the file holds it."""
        if name not in KEYS and name not in _flatten(_read_raw(self.path)):
            key(name)  # raises, naming the known keys
        if not self.path.exists():
            return False
        removed = False

        def change(data: dict[str, Any]) -> bool:
            nonlocal removed
            removed = _drop(data, name)
            return removed

        self._update(change)
        return removed

    def _update(self, change: Callable[[dict[str, Any]], bool]) -> None:
        """Read, ``change`` and (when it says so) rewrite the file, under the lock."""
        target = self.path.resolve() if self.path.is_symlink() else self.path
        directory = target.parent
        _dirs.make_private_dir(
            directory,
            lambda exc: ConfigError(f"cannot create the config directory {directory}: {exc}"),
        )
        try:
            with _locked(directory):
                data = _read_raw(target)
                if change(data):
                    _dirs.write_atomic(target, dumps(data).encode("utf-8"), 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write the config file {target}: {exc}") from exc


def _put(data: dict[str, Any], name: str, value: object) -> None:
    """Set ``name`` (dotted) in nested ``data``; a dotted spelling already in the file
    (``"node.default"`` as one quoted key) is replaced by the table form."""
    data.pop(name, None)
    *parents, last = name.split(".")
    table = data
    for part in parents:
        inner = table.get(part)
        if not isinstance(inner, dict):
            inner = {}
            table[part] = inner
        table = inner
    table[last] = value


def _drop(data: dict[str, Any], name: str) -> bool:
    """Remove ``name`` (dotted) from nested ``data``, and tables it leaves empty."""
    if name in data and not isinstance(data[name], dict):
        del data[name]
        return True
    head, dot, rest = name.partition(".")
    inner = data.get(head)
    if not dot or not isinstance(inner, dict) or not _drop(inner, rest):
        return False
    if not inner:
        del data[head]
    return True


# --- the module-level API: the user's file and environment --------------------------


def lookup(name: str) -> Setting:
    """The value of ``name`` and where it came from."""
    return Config().lookup(name)


@overload
def get(name: PathKey) -> Path: ...
@overload
def get(name: BoolKey) -> bool: ...
@overload
def get(name: FloatKey) -> float: ...
@overload
def get(name: StrKey) -> str: ...
@overload
def get(name: str) -> Value: ...
def get(name: str) -> Value:
    """The value of ``name`` (environment, else file, else default), typed by its key:
    a Path for directories, a bool, a float of seconds, else a str."""
    return Config().get(name)


def settings() -> list[Setting]:
    """Every key's value and source, in schema order."""
    return Config().settings()


def set_value(name: str, text: str) -> Setting:
    """Check ``text`` for ``name`` and write it to the user's config file."""
    return Config().set(name, text)


def unset(name: str) -> bool:
    """Remove ``name`` from the user's config file; False when it was not set there."""
    return Config().unset(name)
