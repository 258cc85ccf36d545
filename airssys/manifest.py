"""Component.toml: the schema, parsing and validation.

    [component]
    name = "counter"
    version = "0.1.0"
    wasm = "counter.wasm"          # relative to this file (.wasm or .wat)
    source = "app.py"              # Python components: what `airssys build` builds

    [limits]
    memory = "4MiB"                # linear memory cap
    fuel-per-message = 10_000_000
    timeout-ms = 100
    mailbox = 1000
    max-payload = "1MiB"

Every error names the file, the key and what would be accepted.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Final

from .errors import ManifestError

__all__ = ("ComponentManifest", "LimitsSpec", "load_manifest", "parse_manifest", "parse_size")

_UNITS: Final = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SECTIONS: Final = {
    "component": ("name", "version", "wasm", "description", "source"),
    "limits": ("memory", "fuel-per-message", "timeout-ms", "mailbox", "max-payload"),
}
# (min, max) per numeric limit; sizes in bytes
_RANGES: Final = {
    "memory": (64 * 1024, 4 * 1024**3),
    "fuel-per-message": (1, 10**15),
    "timeout-ms": (1, 3_600_000),
    "mailbox": (1, 10_000_000),
    "max-payload": (1, 1024**3),
}


@dataclass(frozen=True, slots=True)
class LimitsSpec:
    """The ``[limits]`` table; None means "use the runtime default"."""

    memory: int | None = None
    fuel_per_message: int | None = None
    timeout_ms: float | None = None
    mailbox: int | None = None
    max_payload: int | None = None


@dataclass(frozen=True, slots=True)
class ComponentManifest:
    """A parsed, validated Component.toml."""

    path: Path
    name: str
    version: str
    wasm: Path
    description: str = ""
    limits: LimitsSpec = field(default_factory=LimitsSpec)
    source: Path | None = None


def parse_size(text: str | int, *, where: str = "size") -> int:
    """``"4MiB"`` -> 4194304. Integers are bytes. Units: B, KB, MB, GB, KiB, MiB, GiB."""
    if isinstance(text, bool):
        raise ManifestError(f"{where}: expected a size, got {text!r}")
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ManifestError(
            f"{where}: {text!r} is not a size; use a number of bytes or a number with "
            'a unit: B, KB, MB, GB, KiB, MiB, GiB (e.g. "4MiB")'
        )
    return int(float(match.group(1)) * _UNITS[unit])


def load_manifest(path: str | PathLike[str]) -> ComponentManifest:
    """Read and validate a Component.toml (or a directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "Component.toml"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{p}: cannot read the manifest: {exc.strerror}") from exc
    return parse_manifest(text, path=p)


def parse_manifest(text: str, *, path: str | PathLike[str] = "Component.toml") -> ComponentManifest:
    """Validate manifest text; ``path`` names it in errors and anchors ``wasm``."""
    p = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{p}: not valid TOML: {exc}") from exc

    for section, value in data.items():
        if section not in _SECTIONS:
            raise ManifestError(
                f"{p}: unknown section [{section}]; accepted: "
                + ", ".join(f"[{s}]" for s in _SECTIONS)
            )
        if not isinstance(value, dict):
            raise ManifestError(f"{p}: {section} must be a table ([{section}])")
        for key in value:
            if key not in _SECTIONS[section]:
                raise ManifestError(
                    f"{p}: unknown key {section}.{key}; accepted in [{section}]: "
                    + ", ".join(_SECTIONS[section])
                )

    component = data.get("component")
    if component is None:
        raise ManifestError(f"{p}: missing [component] table (with name, version, wasm)")
    for key in ("name", "version", "wasm"):
        if key not in component:
            raise ManifestError(f"{p}: missing key component.{key}")
    for key in ("name", "version", "wasm", "source"):
        if key in component and (not isinstance(component[key], str) or not component[key]):
            raise ManifestError(f"{p}: component.{key} must be a non-empty string")
    name = component["name"]
    if not _NAME.match(name):
        raise ManifestError(
            f"{p}: component.name {name!r} must be lowercase letters, digits, '-' or '_'"
        )
    limits = _limits(p, data.get("limits", {}))
    return ComponentManifest(
        path=p,
        name=name,
        version=component["version"],
        wasm=(p.parent / component["wasm"]).resolve(),
        description=str(component.get("description", "")),
        limits=limits,
        source=(p.parent / component["source"]).resolve() if "source" in component else None,
    )


def _limits(p: Path, table: dict[str, Any]) -> LimitsSpec:
    values: dict[str, Any] = {}
    for key, raw in table.items():
        where = f"{p}: limits.{key}"
        if key in ("memory", "max-payload"):
            value: int | float = parse_size(raw, where=where)
        elif isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ManifestError(f"{where}: expected a number, got {raw!r}")
        elif key != "timeout-ms" and not isinstance(raw, int):
            raise ManifestError(f"{where}: expected a whole number, got {raw!r}")
        else:
            value = raw
        low, high = _RANGES[key]
        if not low <= value <= high:
            raise ManifestError(f"{where}: {raw!r} is out of range; accepted: {low} to {high}")
        values[key.replace("-", "_")] = value
    return LimitsSpec(**values)
