"""What a component declares it needs: the ``[capabilities]`` table, and its checks.

Nothing is granted that is not declared. The table, every kind and key with an
example, is in the package's documentation (:mod:`airssys.security`); Python callers
pass the same shape as a dict (:meth:`Grants.from_dict`).

:meth:`Grants.compile` builds a :class:`CompiledGrants` once per component: every
check is then a set or dict lookup on a repeated resource (a regex on a new one),
and a refusal raises :class:`~airssys.errors.CapabilityDenied` reading
``capability denied: <kind> <resource>; granted: <the declared patterns>``.

Files have no check here: a component reaches exactly the directories its ``files``
grants mount (WASI preopens, :mod:`airssys.runtime`), and nothing else exists for it.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, NoReturn, final

from .._logging import get_logger
from ..errors import CapabilityDenied
from . import _schema as schema
from ._hosts import HostMatcher, HostPattern
from ._patterns import ADDRESS, CACHE_SIZE, TOPIC, SegmentPattern, compile_patterns, covered_by

__all__ = (
    "CompiledGrants",
    "DenyHook",
    "FileGrant",
    "Grants",
    "Kind",
    "ProcessGrant",
    "parse_capabilities",
)

_log = get_logger("airssys.security")
GRANTED_SHOWN: Final = 200  # characters of the granted list quoted in a denial
RESOURCE_SHOWN: Final = 200

DenyHook = Callable[[str, str, str], None]
"""Called with ``(kind, resource, reason)`` on every denial, before it is raised."""


class Kind(StrEnum):
    """What a check is about; the ``kind`` of a denial and of an audit record."""

    SEND = "send"  # also covers request
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    STORAGE = "storage"
    FILES = "files"
    NETWORK = "network"
    PROCESS = "process"


@dataclass(frozen=True, slots=True)
class FileGrant:
    """A host directory (absolute) mounted at a guest path, read-only unless writable."""

    host: Path
    guest: str
    writable: bool = False

    def __str__(self) -> str:
        mode = "writable" if self.writable else "read-only"
        return f"{self.guest} <- {self.host} ({mode})"


@dataclass(frozen=True, slots=True)
class ProcessGrant:
    """An executable (absolute path, or '*' for any) and its argument patterns."""

    command: str
    args: tuple[str, ...] = ()

    def args_regex(self) -> str:
        """Regex source over the arguments, each prefixed with NUL."""
        parts = []
        for arg in self.args:
            if arg == schema.REST_ARGS:
                parts.append("(?:\x00[^\x00]*)*")
            else:
                glob = "[^\x00]*".join(re.escape(piece) for piece in arg.split("*"))
                parts.append("\x00" + glob)
        return "".join(parts)

    def __str__(self) -> str:
        return " ".join([self.command, *self.args])


def _show_granted(values: Iterable[object]) -> str:
    text = ", ".join(str(v) for v in values) or "nothing"
    return text if len(text) <= GRANTED_SHOWN else text[:GRANTED_SHOWN] + "..."


def _show_resource(resource: str) -> str:
    text = resource if resource.isprintable() else repr(resource)
    return text if len(text) <= RESOURCE_SHOWN else text[:RESOURCE_SHOWN] + "..."


@dataclass(frozen=True, slots=True)
class Grants:
    """What one component declares. Empty by default: nothing is granted.

    ``quota`` (bytes) and ``keys`` bound its storage across all its buckets; None
    means "as much as the trust level's ceiling allows".
    """

    send: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    quota: int | None = None
    keys: int | None = None
    files: tuple[FileGrant, ...] = ()
    network: tuple[HostPattern, ...] = ()
    process: tuple[ProcessGrant, ...] = ()

    @classmethod
    def none(cls) -> Grants:
        """Nothing at all."""
        return cls()

    @classmethod
    def everything(cls) -> Grants:
        """Every address, topic, bucket, file, host and executable (for ``dev`` trust)."""
        return cls(
            send=("/#",),
            publish=("#",),
            subscribe=("#",),
            buckets=(schema.ANY_BUCKET,),
            files=(FileGrant(Path(os.sep), "/", writable=True),),
            network=(HostPattern(None, None, False, None),),
            process=(ProcessGrant(schema.ANY_COMMAND, (schema.REST_ARGS,)),),
        )

    @classmethod
    def from_dict(
        cls,
        table: Mapping[str, Any],
        *,
        where: str = "",
        base_dir: str | os.PathLike[str] | None = None,
    ) -> Grants:
        """The same schema as the TOML table, from Python (``spawn_component(...,
        capabilities={...})``); relative host paths are taken from ``base_dir``
        (default: the current directory)."""
        return parse_capabilities(table, where, base_dir=base_dir)

    @property
    def is_empty(self) -> bool:
        return self == Grants()

    def items(self) -> list[tuple[Kind, str]]:
        """Every declaration as ``(kind, text)``, for the audit log's grants at start."""
        out: list[tuple[Kind, str]] = []
        out += [(Kind.SEND, p) for p in self.send]
        out += [(Kind.PUBLISH, p) for p in self.publish]
        out += [(Kind.SUBSCRIBE, p) for p in self.subscribe]
        out += [(Kind.STORAGE, f"bucket {b}") for b in self.buckets]
        if self.quota is not None:
            out.append((Kind.STORAGE, f"quota {self.quota} bytes"))
        if self.keys is not None:
            out.append((Kind.STORAGE, f"keys {self.keys}"))
        out += [(Kind.FILES, str(f)) for f in self.files]
        out += [(Kind.NETWORK, str(h)) for h in self.network]
        out += [(Kind.PROCESS, str(p)) for p in self.process]
        return out

    def compile(
        self,
        component: str,
        *,
        on_deny: DenyHook | None = None,
        shared_buckets: Iterable[str] = (),
        cache_size: int = CACHE_SIZE,
    ) -> CompiledGrants:
        """The checks for one component (build once; each check is then cheap).

        ``on_deny(kind, resource, reason)`` runs on every denial (the audit log);
        ``shared_buckets`` are buckets that ``'*'`` does not reach (the policy's).
        """
        return CompiledGrants(
            self, component, on_deny=on_deny, shared_buckets=shared_buckets, cache_size=cache_size
        )


def parse_capabilities(
    table: Mapping[str, Any],
    where: str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    section: str = "capabilities",
) -> Grants:
    """Read a ``[capabilities]`` table; ManifestError naming ``where`` and the key.

    ``where`` names the file (``path/Component.toml``); errors read
    ``<where>: capabilities.network[1]: <problem>; <accepted syntax>``. Relative
    ``files`` host paths are taken from ``base_dir`` (the manifest's directory).
    """
    w = schema.Where(where, section)
    schema.table(w, "", table, schema.KINDS)
    values: dict[str, Any] = {}
    if "messaging" in table:
        values.update(schema.messaging(w, table["messaging"], every_key=False))
    if "storage" in table:
        storage = schema.table(w, "storage", table["storage"], schema.STORAGE_KEYS)
        if storage and "buckets" not in storage:
            w.fail("storage", 'names no buckets; write e.g. buckets = ["default"]')
        if "buckets" in storage:
            values["buckets"] = schema.buckets(w, "storage.buckets", storage["buckets"])
        if "quota" in storage:
            values["quota"] = schema.size(w, "storage.quota", storage["quota"])
        if "keys" in storage:
            values["keys"] = schema.count(w, "storage.keys", storage["keys"])
    if "files" in table:
        values["files"] = _files(w, table["files"], base_dir)
    if "network" in table:
        values["network"] = schema.hosts(w, "network", table["network"])
    if "process" in table:
        values["process"] = _process(w, table["process"])
    return Grants(**values)


def _files(
    w: schema.Where, value: object, base_dir: str | os.PathLike[str] | None
) -> tuple[FileGrant, ...]:
    out: dict[str, FileGrant] = {}
    example = '[{ host = "./data", guest = "/data" }]'
    for i, item in enumerate(schema.items(w, "files", value, example)):
        key = f"files[{i}]"
        entry = schema.table(w, key, item, ("host", "guest", "writable"))
        for required in ("host", "guest"):
            if required not in entry:
                w.fail(key, f"missing {required}; write e.g. {example[1:-1]}")
        grant = FileGrant(
            schema.host_path(w, f"{key}.host", entry["host"], base_dir, absolute=False),
            schema.guest_path(w, f"{key}.guest", entry["guest"]),
            schema.flag(w, f"{key}.writable", entry.get("writable", False)),
        )
        if grant.guest in out:
            w.fail(f"{key}.guest", f"{grant.guest!r} is mounted twice")
        out[grant.guest] = grant
    return tuple(out.values())


def _process(w: schema.Where, value: object) -> tuple[ProcessGrant, ...]:
    out = []
    example = '[{ command = "/usr/bin/convert", args = ["-resize", "*", "**"] }]'
    for i, item in enumerate(schema.items(w, "process", value, example)):
        key = f"process[{i}]"
        entry = schema.table(w, key, item, ("command", "args"))
        if "command" not in entry:
            w.fail(key, f"missing command; write e.g. {example[1:-1]}")
        out.append(
            ProcessGrant(
                schema.command(w, f"{key}.command", entry["command"], any_allowed=False),
                schema.arg_patterns(w, f"{key}.args", entry.get("args", [])),
            )
        )
    return tuple(dict.fromkeys(out))


# --- compiled checks ----------------------------------------------------------------


@final
class CompiledGrants:
    """One component's grants, compiled: ``check_*`` return None or raise CapabilityDenied.

    Build with :meth:`Grants.compile`. Thread-safe (checks run on worker threads).
    """

    __slots__ = (
        "_any_bucket",
        "_bucket_names",
        "_cache_size",
        "_granted",
        "_on_deny",
        "_process",
        "_process_cache",
        "_publish",
        "_send",
        "_shared",
        "_subscribe_cache",
        "_subscribe_patterns",
        "_url",
        "component",
        "grants",
    )

    def __init__(
        self,
        grants: Grants,
        component: str,
        *,
        on_deny: DenyHook | None = None,
        shared_buckets: Iterable[str] = (),
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.grants = grants
        self.component = component
        self._on_deny = on_deny
        self._cache_size = cache_size
        self._send = compile_patterns(grants.send, ADDRESS, cache_size=cache_size).__call__
        self._publish = compile_patterns(grants.publish, TOPIC, cache_size=cache_size).__call__
        self._subscribe_patterns = tuple(SegmentPattern.parse(p, TOPIC) for p in grants.subscribe)
        self._subscribe_cache: dict[str, bool] = {}
        self._bucket_names = frozenset(b for b in grants.buckets if b != schema.ANY_BUCKET)
        self._any_bucket = schema.ANY_BUCKET in grants.buckets
        self._shared = frozenset(shared_buckets)
        self._url = HostMatcher(grants.network, cache_size=cache_size).__call__
        by_command: dict[str, list[str]] = {}
        for p in grants.process:
            by_command.setdefault(p.command, []).append(p.args_regex())
        self._process = {
            command: re.compile("|".join(f"(?:{r})" for r in regexes), re.DOTALL)
            for command, regexes in by_command.items()
        }
        self._process_cache: dict[tuple[str, ...], bool] = {}
        self._granted = {
            Kind.SEND: _show_granted(grants.send),
            Kind.PUBLISH: _show_granted(grants.publish),
            Kind.SUBSCRIBE: _show_granted(grants.subscribe),
            Kind.STORAGE: _show_granted(grants.buckets),
            Kind.FILES: _show_granted(
                f"{f.guest} ({'writable' if f.writable else 'read-only'})" for f in grants.files
            ),
            Kind.NETWORK: _show_granted(grants.network),
            Kind.PROCESS: _show_granted(grants.process),
        }

    # --- the checks ------------------------------------------------------------------


    @property
    def on_deny(self) -> DenyHook | None:
        """The hook denials are reported to (the component's audit scope); refusals made
        outside these checks (storage names, quotas) report to it too."""
        return self._on_deny
    def check_send(self, address: str) -> None:
        """May the component send to (or request from) ``address``?"""
        if not self._send(address):
            self._deny(Kind.SEND, address)

    check_request = check_send

    def check_publish(self, topic: str) -> None:
        """May the component publish to ``topic``?"""
        if not self._publish(topic):
            self._deny(Kind.PUBLISH, topic)

    def check_subscribe(self, pattern: str) -> None:
        """May the component subscribe to ``pattern``? (it must lie within its grants)"""
        hit = self._subscribe_cache.get(pattern)
        if hit is None:
            hit = self._decide_subscribe(pattern)
        if not hit:
            self._deny(Kind.SUBSCRIBE, pattern)

    def check_bucket(self, name: str) -> None:
        """May the component open the storage bucket ``name``?"""
        if name in self._bucket_names:
            return
        if self._any_bucket and name not in self._shared and schema.valid_bucket(name):
            return
        self._deny(Kind.STORAGE, name)

    def check_url(self, url: str) -> None:
        """May the component connect to the host (scheme, host, port) of ``url``?"""
        if not self._url(url):
            self._deny(Kind.NETWORK, url)

    def check_process(self, command: str, args: Sequence[str] = ()) -> None:
        """May the component run ``command`` with ``args``?"""
        key = (command, *args)
        hit = self._process_cache.get(key)
        if hit is None:
            hit = self._decide_process(key)
        if not hit:
            self._deny(Kind.PROCESS, shlex.join(key) if _all_str(key) else repr(key))

    def granted(self, kind: Kind | str) -> str:
        """The declared patterns of ``kind``, as quoted in a denial."""
        return self._granted[Kind(kind)]

    # --- slow paths -------------------------------------------------------------------

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if self._cache_size:
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[key] = value

    def _decide_subscribe(self, pattern: str) -> bool:
        try:
            parsed = SegmentPattern.parse(pattern, TOPIC)
        except ValueError:
            allowed = False
        else:
            allowed = covered_by(self._subscribe_patterns, parsed, TOPIC)
        if isinstance(pattern, str) and len(pattern) <= 256:
            self._remember(self._subscribe_cache, pattern, allowed)
        return allowed

    def _decide_process(self, key: tuple[str, ...]) -> bool:
        allowed = False
        if _all_str(key) and not any("\x00" in part for part in key):
            command, args = key[0], key[1:]
            subject = "".join("\x00" + arg for arg in args)
            normal = os.path.isabs(command) and os.path.normpath(command) == command
            for name in (command, schema.ANY_COMMAND):
                regex = self._process.get(name)
                if normal and regex is not None and regex.fullmatch(subject):
                    allowed = True
                    break
        if sum(len(part) for part in key if isinstance(part, str)) <= 1024:
            self._remember(self._process_cache, key, allowed)
        return allowed

    def _deny(self, kind: Kind, resource: object) -> NoReturn:
        shown = _show_resource(resource if isinstance(resource, str) else repr(resource))
        reason = f"capability denied: {kind} {shown}; granted: {self._granted[kind]}"
        if self._on_deny is not None:
            try:
                self._on_deny(kind.value, shown, reason)
            except Exception:  # the audit must not turn a denial into a crash
                _log.exception("capability denial hook failed", component=self.component)
        raise CapabilityDenied(reason, kind=kind.value, resource=shown, component=self.component)

    def __repr__(self) -> str:
        return f"<CompiledGrants for {self.component!r}>"


def _all_str(parts: tuple[object, ...]) -> bool:
    return all(isinstance(part, str) for part in parts)
