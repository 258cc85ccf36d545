"""The operator's policy: what may be granted at each trust level.

A component declares its grants (``[capabilities]``); the policy bounds them by the
component's **trust level**:

* ``trusted``: declared grants, within the trusted ceiling (default: anything);
* ``unknown``: the default for anything unsigned: a smaller ceiling (default: any
  messaging within the system, storage up to 10 MiB and 10,000 keys across its own
  buckets, no files, no network, no processes);
* ``dev``: everything allowed, whatever is declared, for development; refused when
  the policy says ``production = true``.

A component whose declarations exceed its ceiling does not start: one
:class:`~airssys.errors.PolicyViolation` lists every excess. The default policy,
with no configuration, is safe for unknown code. A policy file::

    production = true                 # refuse dev trust
    shared-buckets = ["config"]       # buckets shared by every component that may open them

    [unknown]                         # each kind written replaces that kind of the default
    messaging = { send = ["/app/#"], publish = ["app.#"], subscribe = ["app.#"] }
    storage = { buckets = ["*"], quota = "1MiB", keys = 1000 }   # quota/keys left out: no limit
    network = ["https://*.example.com"]

    [trusted]
    storage = { buckets = ["*"], shared = ["config"] }
    files = [{ host = "/srv/data", writable = true }]           # roots, absolute
    network = ["*://*:*"]
    process = ["/usr/bin/convert"]                              # commands ("*": any)

A ceiling has the shape of ``[capabilities]`` with these differences: ``storage``
also takes ``shared`` (the shared buckets this level may open) and bucket names may
hold ``*`` (``cache-*``); ``files`` lists host roots (absolute, ``writable`` or
not) under which a component may mount directories; ``process`` lists commands
without argument patterns. Paths are compared lexically (no symlinks are followed
here): the files service must resolve the real path and ask :meth:`Ceiling.allows_host_path`
again.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from ..errors import PolicyViolation
from ..units import parse_toml, read_text
from . import _hosts as hosts
from . import _schema as schema
from ._grants import CompiledGrants, DenyHook, Grants, Kind
from ._hosts import HostPattern
from ._patterns import ADDRESS, TOPIC, covered_by

__all__ = ("Ceiling", "Excess", "FileRoot", "Policy", "TrustLevel")

MiB: Final = 1024 * 1024
_POLICY_KEYS: Final = ("production", "shared-buckets", "trusted", "unknown")
_CEILING_STORAGE_KEYS: Final = ("buckets", "shared", "quota", "keys")


class TrustLevel(StrEnum):
    """How far a component is trusted; it selects the ceiling its grants must fit."""

    TRUSTED = "trusted"
    UNKNOWN = "unknown"
    DEV = "dev"

    @classmethod
    def parse(cls, value: object) -> TrustLevel:
        """``value`` as a TrustLevel; ValueError naming the accepted ones."""
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        accepted = ", ".join(level.value for level in cls)
        raise ValueError(f"unknown trust level {value!r:.60}; accepted: {accepted}")


@dataclass(frozen=True, slots=True)
class FileRoot:
    """A host directory under which components may mount (and, if writable, write)."""

    root: Path
    writable: bool = False

    def __str__(self) -> str:
        return f"{self.root} ({'writable' if self.writable else 'read-only'})"


@dataclass(frozen=True, slots=True)
class Excess:
    """One declaration beyond the ceiling."""

    kind: str
    resource: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.resource}: {self.reason}"


def _bucket_glob(pattern: str) -> re.Pattern[str]:
    return re.compile("[^\x00]*".join(re.escape(part) for part in pattern.split("*")))


@dataclass(frozen=True, slots=True)
class Ceiling:
    """What may be granted at one trust level (the shape of ``[capabilities]``).

    ``buckets``: names of the component's own buckets it may open (``*`` inside a
    name matches any text; ``*`` alone, any). ``shared``: the policy's shared
    buckets it may open (``*``: all). ``max_quota`` (bytes) and ``max_keys``: None
    means no limit. ``process``: absolute commands, or ``*`` for any.
    """

    send: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    max_quota: int | None = None
    max_keys: int | None = None
    files: tuple[FileRoot, ...] = ()
    network: tuple[HostPattern, ...] = ()
    process: tuple[str, ...] = ()

    @classmethod
    def nothing(cls) -> Ceiling:
        return cls()

    @classmethod
    def everything(cls) -> Ceiling:
        return cls(
            send=("/#",),
            publish=("#",),
            subscribe=("#",),
            buckets=(schema.ANY_BUCKET,),
            shared=(schema.ANY_BUCKET,),
            files=(FileRoot(Path(os.sep), writable=True),),
            network=(HostPattern(None, None, False, None),),
            process=(schema.ANY_COMMAND,),
        )

    @classmethod
    def default_unknown(cls) -> Ceiling:
        """Any messaging within the system; 10 MiB / 10,000 keys of its own buckets."""
        return cls(
            send=("/#",),
            publish=("#",),
            subscribe=("#",),
            buckets=(schema.ANY_BUCKET,),
            max_quota=10 * MiB,
            max_keys=10_000,
        )

    @classmethod
    def from_dict(
        cls,
        table: Mapping[str, Any],
        *,
        where: str = "",
        section: str = "ceiling",
        base: Ceiling | None = None,
    ) -> Ceiling:
        """Read a ceiling table. Each kind it holds replaces that kind of ``base``
        (default: nothing); kinds it leaves out keep ``base``'s."""
        w = schema.Where(where, section)
        schema.table(w, "", table, schema.KINDS)
        values: dict[str, Any] = {}
        if "messaging" in table:
            values.update(schema.messaging(w, table["messaging"], every_key=True))
        if "storage" in table:
            storage = schema.table(w, "storage", table["storage"], _CEILING_STORAGE_KEYS)
            if "buckets" not in storage and "shared" not in storage:
                w.fail("storage", 'names no buckets; write e.g. buckets = ["*"] (any of its own)')
            values["buckets"] = schema.buckets(
                w, "storage.buckets", storage.get("buckets", []), globs=True
            )
            values["shared"] = schema.buckets(w, "storage.shared", storage.get("shared", []))
            quota = storage.get("quota")
            keys = storage.get("keys")
            values["max_quota"] = None if quota is None else schema.size(w, "storage.quota", quota)
            values["max_keys"] = None if keys is None else schema.count(w, "storage.keys", keys)
        if "files" in table:
            values["files"] = _roots(w, table["files"])
        if "network" in table:
            values["network"] = schema.hosts(w, "network", table["network"])
        if "process" in table:
            values["process"] = _commands(w, table["process"])
        start = base if base is not None else cls()
        return Ceiling(**{**{f: getattr(start, f) for f in cls.__dataclass_fields__}, **values})

    def allows_host_path(self, path: str | os.PathLike[str], writable: bool = False) -> bool:
        """Is ``path`` (absolute) within a root of this ceiling, writable if asked?
        Lexical: resolve symlinks first when the answer must hold on disk."""
        target = Path(os.path.normpath(os.fspath(path)))
        if not target.is_absolute():
            return False
        return any(
            target.is_relative_to(r.root) and (r.writable or not writable) for r in self.files
        )

    def excesses(
        self, grants: Grants, *, level: str = "", shared_buckets: Iterable[str] = ()
    ) -> list[Excess]:
        """Every declaration in ``grants`` this ceiling does not allow."""
        name = f"the {level} ceiling" if level else "the ceiling"
        out: list[Excess] = []
        for kind, declared, ceiling, sep in (
            (Kind.SEND, grants.send, self.send, ADDRESS),
            (Kind.PUBLISH, grants.publish, self.publish, TOPIC),
            (Kind.SUBSCRIBE, grants.subscribe, self.subscribe, TOPIC),
        ):
            for pattern in declared:
                if not covered_by(ceiling, pattern, sep):
                    out.append(Excess(kind, pattern, f"not within {name} ({_list(ceiling)})"))
        out += self._storage_excesses(grants, name, frozenset(shared_buckets))
        for grant in grants.files:
            if self.allows_host_path(grant.host, grant.writable):
                continue
            if grant.writable and self.allows_host_path(grant.host):
                reason = f"writable, but {name} allows it read-only"
            else:
                reason = f"{grant.host} is under no root of {name} ({_list(self.files)})"
            out.append(Excess(Kind.FILES, grant.guest, reason))
        for host in grants.network:
            if not hosts.covered_by(self.network, host):
                out.append(
                    Excess(Kind.NETWORK, str(host), f"not within {name} ({_list(self.network)})")
                )
        for process in grants.process:
            if schema.ANY_COMMAND not in self.process and process.command not in self.process:
                reason = f"not a command {name} allows ({_list(self.process)})"
                out.append(Excess(Kind.PROCESS, process.command, reason))
        return out

    def _storage_excesses(self, grants: Grants, name: str, shared: frozenset[str]) -> list[Excess]:
        out = []
        own = [_bucket_glob(b) for b in self.buckets]
        for bucket in grants.buckets:
            if bucket == schema.ANY_BUCKET:
                ok = schema.ANY_BUCKET in self.buckets
                reason = f"any bucket is beyond {name} ({_list(self.buckets)})"
            elif bucket in shared:
                ok = schema.ANY_BUCKET in self.shared or bucket in self.shared
                reason = f"a shared bucket {name} does not open ({_list(self.shared)})"
            else:
                ok = any(glob.fullmatch(bucket) for glob in own)
                reason = f"not a bucket {name} allows ({_list(self.buckets)})"
            if not ok:
                out.append(Excess(Kind.STORAGE, f"bucket {bucket}", reason))
        if (
            self.max_quota is not None
            and grants.quota is not None
            and grants.quota > self.max_quota
        ):
            out.append(
                Excess(
                    Kind.STORAGE,
                    f"quota {grants.quota} bytes",
                    f"above {name}'s {self.max_quota} bytes",
                )
            )
        if self.max_keys is not None and grants.keys is not None and grants.keys > self.max_keys:
            out.append(
                Excess(Kind.STORAGE, f"keys {grants.keys}", f"above {name}'s {self.max_keys} keys")
            )
        return out


def _list(values: Iterable[object]) -> str:
    text = ", ".join(str(v) for v in values)
    if not text:
        return "nothing"
    return text if len(text) <= 120 else text[:120] + "..."


def _roots(w: schema.Where, value: object) -> tuple[FileRoot, ...]:
    out = []
    example = '[{ host = "/srv/data", writable = false }]'
    for i, item in enumerate(schema.items(w, "files", value, example)):
        key = f"files[{i}]"
        if isinstance(item, Mapping) and "guest" in item:
            w.fail(
                f"{key}.guest", "a ceiling names host roots only; guest paths are the component's"
            )
        entry = schema.table(w, key, item, ("host", "writable"))
        if "host" not in entry:
            w.fail(key, f"missing host; write e.g. {example[1:-1]}")
        out.append(
            FileRoot(
                schema.host_path(w, f"{key}.host", entry["host"], None, absolute=True),
                schema.flag(w, f"{key}.writable", entry.get("writable", False)),
            )
        )
    return tuple(dict.fromkeys(out))


def _commands(w: schema.Where, value: object) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(schema.items(w, "process", value, '["/usr/bin/convert"]')):
        key = f"process[{i}]"
        if isinstance(item, Mapping):
            entry = schema.table(w, key, item, ("command",))
            if "command" not in entry:
                w.fail(key, 'missing command; write e.g. { command = "/usr/bin/convert" }')
            out.append(schema.command(w, f"{key}.command", entry["command"]))
        else:
            out.append(schema.command(w, key, item))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class Policy:
    """Ceilings per trust level; ``Policy()`` is :meth:`default`, safe for unknown code.

    ``production``: refuse ``dev`` trust. ``shared_buckets``: buckets shared by every
    component allowed to open them (others are private to each component).
    """

    trusted: Ceiling = field(default_factory=Ceiling.everything)
    unknown: Ceiling = field(default_factory=Ceiling.default_unknown)
    production: bool = False
    shared_buckets: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        shared = frozenset(self.shared_buckets)
        for name in shared:
            if not schema.valid_bucket(name):
                raise ValueError(f"shared bucket {name!r:.60}: {schema.BUCKET_RULE}")
        object.__setattr__(self, "shared_buckets", shared)

    @classmethod
    def default(cls) -> Policy:
        """Trusted: everything. Unknown: messaging, 10 MiB / 10,000 keys of storage,
        nothing else. Dev allowed (not production)."""
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy file (TOML); ManifestError naming the file and the key."""
        p = Path(path)
        return cls.from_toml(read_text(p, "the policy"), path=p)

    @classmethod
    def from_toml(cls, text: str, *, path: str | os.PathLike[str] = "policy.toml") -> Policy:
        return cls.from_dict(parse_toml(text, path), where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "policy") -> Policy:
        """The policy file's shape, from Python."""
        w = schema.Where(where, "")
        if "dev" in data:
            w.fail(
                "dev",
                "dev trust allows everything and has no ceiling; write production = "
                "true to refuse it",
            )
        schema.table(w, "", data, _POLICY_KEYS)
        production = schema.flag(w, "production", data.get("production", False))
        shared = schema.buckets(w, "shared-buckets", data.get("shared-buckets", []))
        if schema.ANY_BUCKET in shared:
            w.fail("shared-buckets", "name the shared buckets; '*' is not accepted here")
        defaults = cls()
        levels = {}
        for level in (TrustLevel.TRUSTED, TrustLevel.UNKNOWN):
            base: Ceiling = getattr(defaults, level.value)
            if level.value in data:
                levels[level.value] = Ceiling.from_dict(
                    data[level.value], where=where, section=level.value, base=base
                )
        return cls(production=production, shared_buckets=frozenset(shared), **levels)

    def ceiling(self, trust: TrustLevel | str) -> Ceiling:
        """The ceiling of ``trust`` (``dev``: everything)."""
        level = TrustLevel.parse(trust)
        if level is TrustLevel.DEV:
            return Ceiling.everything()
        return self.trusted if level is TrustLevel.TRUSTED else self.unknown

    def excesses(self, grants: Grants, trust: TrustLevel | str) -> list[Excess]:
        """Every way ``grants`` exceed what ``trust`` allows (empty: admitted)."""
        level = TrustLevel.parse(trust)
        if level is TrustLevel.DEV:
            if self.production:
                return [
                    Excess("trust", "dev", "this policy is for production and refuses dev trust")
                ]
            return []
        return self.ceiling(level).excesses(
            grants, level=level.value, shared_buckets=self.shared_buckets
        )

    def admit(self, grants: Grants, trust: TrustLevel | str) -> list[str]:
        """Every excess as text (empty when ``grants`` are admitted at ``trust``)."""
        return [str(excess) for excess in self.excesses(grants, trust)]

    def check(
        self, grants: Grants, trust: TrustLevel | str, *, component: str = "component"
    ) -> None:
        """Raise PolicyViolation, listing every excess, unless ``grants`` are admitted."""
        found = self.admit(grants, trust)
        if found:
            level = TrustLevel.parse(trust)
            noun = "excess" if len(found) == 1 else "excesses"
            lines = "".join(f"\n  - {line}" for line in found)
            raise PolicyViolation(
                f"component {component!r} (trust {level.value}) is refused: "
                f"{len(found)} {noun} over its ceiling:{lines}",
                component=component,
                excesses=tuple(found),
            )

    def effective(self, grants: Grants, trust: TrustLevel | str) -> Grants:
        """What a component at ``trust`` is actually granted (``dev``: everything)."""
        if TrustLevel.parse(trust) is TrustLevel.DEV:
            everything = Grants.everything()
            shared = tuple(sorted(self.shared_buckets))
            return dataclasses.replace(everything, buckets=(*everything.buckets, *shared))
        return grants

    def storage_limits(
        self, grants: Grants, trust: TrustLevel | str
    ) -> tuple[int | None, int | None]:
        """``(quota bytes, keys)`` to enforce: the declared ones, else the ceiling's
        (None: no limit)."""
        ceiling = self.ceiling(trust)
        quota = grants.quota if grants.quota is not None else ceiling.max_quota
        keys = grants.keys if grants.keys is not None else ceiling.max_keys
        return quota, keys

    def compile(
        self,
        grants: Grants,
        trust: TrustLevel | str,
        *,
        component: str,
        on_deny: DenyHook | None = None,
    ) -> CompiledGrants:
        """Check ``grants`` at ``trust`` (PolicyViolation when refused), then compile
        what the component is granted."""
        self.check(grants, trust, component=component)
        return self.effective(grants, trust).compile(
            component, on_deny=on_deny, shared_buckets=self.shared_buckets
        )
