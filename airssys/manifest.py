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

Every error is a :class:`~airssys.errors.ManifestError` naming the file, the key
and what would be accepted; no other exception escapes :func:`parse_manifest`. The
name follows the shared rule in :mod:`airssys.names` and, stricter, is lowercase
letters, digits, ``-`` and ``_``; paths and other text hold no control characters
or lone surrogates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Final

from .errors import InvalidName, ManifestError
from .names import BAD_CHAR, COMPONENT_NAME, check_name
from .names import COMPONENT_NAME_RULE as _NAME_RULE
from .security import Grants, parse_capabilities
from .units import parse_size as parse_size
from .units import parse_toml, read_text, size_amount
from .units import show as _show

__all__ = (
    "FSYNC_POLICIES",
    "ComponentManifest",
    "DurabilitySpec",
    "LimitsSpec",
    "load_manifest",
    "parse_durability",
    "parse_manifest",
    "parse_size",
)

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SECTIONS: Final = {
    "component": ("name", "version", "wasm", "description", "source"),
    "limits": ("memory", "fuel-per-message", "timeout-ms", "mailbox", "max-payload"),
    "durability": ("journal", "fsync", "snapshot-every"),
}
FSYNC_POLICIES: Final = ("batch", "always")
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
class DurabilitySpec:
    """The ``[durability]`` table (airssys.durability): off unless ``journal``."""

    journal: bool = False
    """Journal every accepted message and the component's host-call results, and
    replay them into a fresh instance after a trap or a restart of the process."""
    fsync: str = "batch"
    """``batch``: each accepted message is committed to the journal (it survives the
    process being killed) and synced to the disk once per handled batch;
    ``always``: synced before the message is accepted (survives power loss too)."""
    snapshot_every: int = 1000
    """Take a snapshot (components exporting ``snapshot``) every this many handled
    messages and compact the journal; 0: never."""


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
    capabilities: Grants = field(default_factory=Grants.none)
    """What the ``[capabilities]`` table declares (nothing when it is absent)."""
    durability: DurabilitySpec = field(default_factory=DurabilitySpec)
    """The ``[durability]`` table (off when it is absent)."""


def _key(key: str) -> str:
    """A key as written when it is plain text, else its short repr."""
    plain = key.isprintable() and _SURROGATE.search(key) is None and 0 < len(key) <= 60
    return key if plain else _show(key)


def load_manifest(path: str | PathLike[str]) -> ComponentManifest:
    """Read and validate a Component.toml (or a directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "Component.toml"
    return parse_manifest(read_text(p, "the manifest"), path=p)


def parse_manifest(text: str, *, path: str | PathLike[str] = "Component.toml") -> ComponentManifest:
    """Validate manifest text; ``path`` names it in errors and anchors ``wasm``.

    Raises ManifestError, and nothing else, for any text.
    """
    p = Path(path)
    data = parse_toml(text, p)

    for section, value in data.items():
        if section not in _SECTIONS and section != "capabilities":
            raise ManifestError(
                f"{p}: unknown section [{_key(section)}]; accepted: "
                + ", ".join(f"[{s}]" for s in (*_SECTIONS, "capabilities"))
            )
        if not isinstance(value, dict):
            raise ManifestError(f"{p}: {section} must be a table ([{section}]), got {_show(value)}")
        if section == "capabilities":
            continue  # its own schema: airssys.security
        for key in value:
            if key not in _SECTIONS[section]:
                raise ManifestError(
                    f"{p}: unknown key {section}.{_key(key)}; accepted in [{section}]: "
                    + ", ".join(_SECTIONS[section])
                )

    component = data.get("component")
    if component is None:
        raise ManifestError(f"{p}: missing [component] table (with name, version, wasm)")
    for key in ("name", "version", "wasm"):
        if key not in component:
            raise ManifestError(f"{p}: missing key component.{key}")
    name = component["name"]
    if not isinstance(name, str):
        raise ManifestError(f"{p}: component.name must be a string, got {_show(name)}")
    try:  # the rule shared with every actor name
        check_name(name, "component.name")
    except InvalidName as exc:
        raise ManifestError(f"{p}: {exc}") from None
    if not COMPONENT_NAME.fullmatch(name):
        raise ManifestError(f"{p}: component.name {_show(name)} must be {_NAME_RULE}")
    for key in ("version", "wasm", "source"):
        if key in component:
            _text(p, key, component[key])
    description = component.get("description", "")
    if not isinstance(description, str) or _SURROGATE.search(description):
        raise ManifestError(
            f"{p}: component.description must be a string (with no lone surrogates), "
            f"got {_show(description)}"
        )
    limits = _limits(p, data.get("limits", {}))
    table = data.get("capabilities")
    capabilities = (
        Grants.none()
        if table is None
        else parse_capabilities(table, str(p), base_dir=_resolve(p, "wasm", "."))
    )
    return ComponentManifest(
        path=p,
        name=name,
        version=component["version"],
        wasm=_resolve(p, "wasm", component["wasm"]),
        description=description,
        limits=limits,
        source=_resolve(p, "source", component["source"]) if "source" in component else None,
        capabilities=capabilities,
        durability=parse_durability(data.get("durability", {}), f"{p}: durability"),
    )


def parse_durability(table: object, where: str) -> DurabilitySpec:
    """A ``[durability]`` table (a manifest's, or a deployment's override)."""
    if not isinstance(table, dict):
        raise ManifestError(f"{where} must be a table, got {_show(table)}")
    for key in table:
        if key not in _SECTIONS["durability"]:
            raise ManifestError(
                f"{where}: unknown key {_key(key)}; accepted: " + ", ".join(_SECTIONS["durability"])
            )
    journal = table.get("journal", False)
    if not isinstance(journal, bool):
        raise ManifestError(f"{where}.journal: expected true or false, got {_show(journal)}")
    fsync = table.get("fsync", "batch")
    if fsync not in FSYNC_POLICIES:
        raise ManifestError(
            f"{where}.fsync: {_show(fsync)} is not a policy; accepted: "
            + ", ".join(repr(f) for f in FSYNC_POLICIES)
        )
    every = table.get("snapshot-every", 1000)
    if isinstance(every, bool) or not isinstance(every, int) or not 0 <= every <= 10**9:
        raise ManifestError(
            f"{where}.snapshot-every: expected a whole number of messages from 0 (never) "
            f"to 1000000000, got {_show(every)}"
        )
    return DurabilitySpec(journal=journal, fsync=fsync, snapshot_every=every)


def _text(p: Path, key: str, value: object) -> str:
    """A [component] string: non-empty, no control characters, no lone surrogates."""
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{p}: component.{key} must be a non-empty string, got {_show(value)}")
    bad = BAD_CHAR.search(value)
    if bad is not None:
        char = bad.group()
        kind = "a lone surrogate" if _SURROGATE.match(char) else "a control character"
        raise ManifestError(
            f"{p}: component.{key} {_show(value)} holds {kind} ({char!r} at index "
            f"{bad.start()}); accepted: text with no control characters or lone surrogates"
        )
    if key in ("wasm", "source") and not value.isprintable():
        index, char = next((i, c) for i, c in enumerate(value) if not c.isprintable())
        raise ManifestError(
            f"{p}: component.{key} {_show(value)} holds a character that is not printable "
            f"({char!r} at index {index}); accepted: a path of printable characters"
        )
    return value


def _resolve(p: Path, key: str, value: str) -> Path:
    """``value`` (a path relative to the manifest), made absolute."""
    try:
        return (p.parent / value).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        raise ManifestError(
            f"{p}: component.{key} {_show(value)} cannot be resolved: {exc}; accepted: "
            "a path relative to the manifest"
        ) from exc


def _limits(p: Path, table: dict[str, Any]) -> LimitsSpec:
    values: dict[str, Any] = {}
    for key, raw in table.items():
        where = f"{p}: limits.{key}"
        low, high = _RANGES[key]
        accepted = f"accepted: {low} to {high}"
        if key in ("memory", "max-payload"):
            amount = size_amount(raw, where)
            if not low <= amount <= high:
                raise ManifestError(f"{where}: {_show(raw)} is out of range; {accepted} bytes")
            values[key.replace("-", "_")] = int(amount)
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ManifestError(f"{where}: expected a number, got {_show(raw)}; {accepted}")
        if key != "timeout-ms" and not isinstance(raw, int):
            raise ManifestError(f"{where}: expected a whole number, got {_show(raw)}; {accepted}")
        if not low <= raw <= high:  # NaN fails this too
            raise ManifestError(f"{where}: {_show(raw)} is out of range; {accepted}")
        values[key.replace("-", "_")] = raw
    return LimitsSpec(**values)
