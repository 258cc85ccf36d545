"""``airssys config get|set|list|unset``: the settings in ``<config>/config.toml``.

Thin wrappers over :mod:`airssys.config` (the schema, the file, the environment
overrides). ``get`` prints the bare value (for scripts); ``list`` shows every key
with where its value came from (default, file, env). ``--json`` prints one JSON
document. An unknown key or a bad value is one line on stderr naming what is
accepted, and exit status 1.

:func:`register_config` adds the commands to the ``config`` group
(``airssys.cli._keys.config_app``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import KEYS, Config, Setting
from ._output import out_console

__all__ = ("register_config",)

_out = out_console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, soft_wrap=True, highlight=False)
_SOURCE_STYLE = {"default": "dim", "file": "green", "env": "yellow"}

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _complete_key(incomplete: str) -> list[tuple[str, str]]:
    return [(name, KEYS[name].help) for name in KEYS if name.startswith(incomplete)]


KeyArgument = Annotated[
    str,
    typer.Argument(
        metavar="KEY",
        help="A setting's name (see airssys config list).",
        autocompletion=_complete_key,
        show_default=False,
    ),
]

_KEYS_HELP = "\n\n".join(
    f"{name}: {key.help} Takes {key.accepted}. Env: ${key.env}." for name, key in KEYS.items()
)
_EPILOG = f"Keys:\n\n{_KEYS_HELP}"


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def _shown(setting: Setting) -> str:
    return KEYS[setting.key].show(setting.value)


def _where(setting: Setting) -> str:
    if setting.source == "default":
        return "default"
    return f"{setting.source} ({setting.origin})"


def config_get(key: KeyArgument, json_output: JsonOption = False) -> None:
    """Print a setting's value (from the environment, else the file, else the default)."""
    setting = Config().lookup(key)
    if json_output:
        _print_json(setting.to_dict())
        return
    typer.echo(_shown(setting))


def config_set(
    key: KeyArgument,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help="The new value, checked against the key's type (a relative path is "
            "made absolute; one starting with ~ is kept as given).",
            show_default=False,
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Write a setting to the config file (created mode 0600 if need be)."""
    config = Config()
    written = config.set(key, value)
    effective = config.lookup(key)
    if json_output:
        _print_json({**written.to_dict(), "effective": effective.to_dict()})
    else:
        _out.print(
            Text.assemble((key, "bold"), " = ", (_shown(written), "green"), f"  ({config.path})")
        )
    if effective.source == "env":
        _err.print(
            Text.assemble(
                ("note: ", "yellow"),
                f"{effective.origin} is set and overrides it (now {_shown(effective)})",
            )
        )


def config_unset(key: KeyArgument, json_output: JsonOption = False) -> None:
    """Remove a setting from the config file (its default, or the environment, applies)."""
    config = Config()
    removed = config.unset(key)
    effective = config.lookup(key) if key in KEYS else None
    if json_output:
        _print_json(
            {
                "key": key,
                "removed": removed,
                "file": str(config.path),
                "effective": effective.to_dict() if effective is not None else None,
            }
        )
        return
    if not removed:
        _err.print(f"{key} was not set in {config.path}")
        return
    line = Text.assemble(("unset ", "yellow"), (key, "bold"))
    if effective is not None:
        line.append(f" (now {_shown(effective)}: {_where(effective)})")
    _out.print(line)


def config_list(json_output: JsonOption = False) -> None:
    """Every setting: its value and where it came from (default, file, env)."""
    config = Config()
    found = config.settings()
    if json_output:
        _print_json({"file": str(config.path), "settings": [s.to_dict() for s in found]})
        return
    table = Table(box=None, pad_edge=False, caption=f"file: {config.path}", caption_justify="left")
    for header in ("key", "value", "source"):
        table.add_column(header, overflow="fold")
    for setting in found:
        table.add_row(
            Text(setting.key, style="bold"),
            Text(_shown(setting)),
            Text(_where(setting), style=_SOURCE_STYLE[setting.source]),
        )
    _out.print(table)


_COMMANDS = (
    ("get", config_get),
    ("set", config_set),
    ("unset", config_unset),
    ("list", config_list),
)


def register_config(config_app: typer.Typer, *, epilog: str | None = None) -> None:
    """Add ``get``, ``set``, ``unset`` and ``list`` to the ``config`` group (once)."""
    present = {info.name for info in config_app.registered_commands}
    with_keys = f"{_EPILOG}\n\n{epilog}" if epilog else _EPILOG
    for name, command in _COMMANDS:
        if name not in present:
            config_app.command(name, epilog=epilog if name == "list" else with_keys)(command)
