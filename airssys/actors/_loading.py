"""From a component source to what a ComponentActor needs: load, limits, admission.

A source is a Component.toml (or its directory), a .wasm/.wat path, wasm bytes,
WAT text, a parsed manifest or a loaded Component. Admission puts the component's
declared capabilities (its manifest's ``[capabilities]``, or ``capabilities=`` from
the caller) through the operator's policy for its trust level, once, before
anything starts: a component declaring more than its ceiling never starts, and
the refusal is audited with every excess.

Each ``files`` grant becomes a mount pinned to the directory found at its real path
(:meth:`Mount.pinned`: opened without following symlinks and kept open; every
instantiation checks it is still the one at that path, under a policy root). What
the component holds on the host (its mounts, its granted commands) is then held
against every live admission (:mod:`._hostpaths`): no mount inside a writable one, no
command a component or another user could rewrite.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from os import PathLike
from pathlib import Path
from typing import Any

from .._logging import get_logger
from ..errors import ManifestError, PolicyViolation
from ..manifest import ComponentManifest, load_manifest
from ..runtime import Component, Limits, Mount, Runtime, looks_like_wat
from ..security import (
    DENY,
    AuditLog,
    Ceiling,
    Excess,
    FileGrant,
    Grants,
    Kind,
    Policy,
    TrustLevel,
)
from ._hostpaths import HOLDINGS, Held, Holding

__all__ = ("Admission", "ComponentSource", "Loaded", "admit", "load")

ComponentSource = Component | ComponentManifest | str | bytes | PathLike[str]
Capabilities = Grants | Mapping[str, Any] | None
_log = get_logger("airssys.security")


@dataclass(frozen=True, slots=True)
class Loaded:
    component: Component
    limits: Limits
    mailbox: int | None
    manifest: ComponentManifest | None


@dataclass(frozen=True, slots=True)
class Admission:
    """What a component may do, decided once at spawn: its effective grants."""

    grants: Grants
    trust: TrustLevel
    version: str
    digest: str
    mounts: tuple[Mount, ...] = ()
    """The ``files`` grants, their host directories resolved on disk and pinned, after
    a read-only root holding only their mount points (so ``/`` lists the mounts)."""
    root: Path | None = None
    """That root's directory on the host (the system removes it when it closes)."""
    holding: Holding | None = None
    """Its mounts and commands, held against every later admission while it lives."""


def load(runtime: Runtime, source: ComponentSource, limits: Limits | None) -> Loaded:
    """Resolve ``source``; limits are the manifest's over the defaults, ``limits``
    over both."""
    manifest: ComponentManifest | None = None
    if isinstance(source, ComponentManifest):
        manifest = source
    elif isinstance(source, str | PathLike) and not looks_like_wat(source):
        path = Path(source)
        if path.is_dir() or path.suffix == ".toml":
            manifest = load_manifest(path)
    if manifest is not None:
        component = runtime.load_file(manifest.wasm, name=manifest.name)
        spec = manifest.limits
        merged = Limits()
        for key in ("memory", "fuel_per_message", "timeout_ms", "max_payload"):
            value = getattr(spec, key)
            if value is not None:
                merged = replace(merged, **{key: value})
        return Loaded(component, limits or merged, spec.mailbox, manifest)
    if isinstance(source, Component):
        return Loaded(source, limits or Limits(), None, None)
    assert not isinstance(source, ComponentManifest)
    return Loaded(runtime.load(source), limits or Limits(), None, None)


def admit(
    policy: Policy,
    audit: AuditLog,
    loaded: Loaded,
    *,
    label: str,
    trust: TrustLevel | str,
    capabilities: Capabilities,
) -> Admission:
    """Check the declared grants against the policy for ``trust``; raise
    PolicyViolation (audited, every excess named) when they exceed its ceiling."""
    level = TrustLevel.parse(trust)
    if capabilities is None:
        declared = loaded.manifest.capabilities if loaded.manifest else Grants.none()
    elif isinstance(capabilities, Grants):
        declared = capabilities
    elif isinstance(capabilities, Mapping):
        declared = Grants.from_dict(dict(capabilities), where=f"capabilities of {label}")
    else:
        raise ManifestError(
            f"capabilities of {label}: expected a table like "
            '{"messaging": {"send": ["/app/*"]}} (or a Grants), got '
            f"{type(capabilities).__name__}"
        )
    version = loaded.manifest.version if loaded.manifest else ""
    digest = loaded.component.sha256
    try:
        policy.check(declared, level, component=label)
    except PolicyViolation:
        scope = audit.bind(label, version=version, digest=digest, trust=level.value)
        scope.refusals(policy.excesses(declared, level))
        raise
    if level is TrustLevel.DEV:
        _log.warning(
            "component runs in dev mode: every capability is granted, declared or not",
            component=label,
        )
    report = _reporter(audit, version, digest, level)
    mounts = _mounts(
        policy, audit, declared, level, report, label=label, version=version, digest=digest
    )
    holding = Holding(
        label,
        (Held(m.host, m.guest, m.writable) for m in mounts),
        (p.command for p in declared.process if os.path.isabs(p.command)),
    )
    problems = HOLDINGS.admit(holding)
    if problems:
        for mount in mounts:
            if mount.pin is not None:
                mount.pin.close()
        excesses = [Excess(kind, resource, reason) for kind, resource, reason in problems]
        audit.bind(label, version=version, digest=digest, trust=level.value).refusals(excesses)
        lines = "".join(f"\n  - {e}" for e in excesses)
        raise PolicyViolation(
            f"component {label!r} may not hold what it declares on the host:{lines}",
            component=label,
            excesses=tuple(str(e) for e in excesses),
        )
    root = _mount_points(mounts) if mounts else None
    if root is not None:
        mounts = (Mount.pinned(str(root), "/", writable=False, report=report), *mounts)
    return Admission(
        policy.effective(declared, level), level, version, digest, mounts, root, holding
    )


def _reporter(
    audit: AuditLog, version: str, digest: str, level: TrustLevel
) -> Callable[[str, str, str], None]:
    """The audit of what a pinned mount finds at run time: a mount that changed, a
    symlink removed (denials of kind files, by the instance's address)."""

    def report(component: str, resource: str, reason: str) -> None:
        audit.record(
            component,
            Kind.FILES,
            resource,
            DENY,
            reason,
            version=version,
            digest=digest,
            trust=level.value,
        )

    return report


def _mount_points(mounts: tuple[Mount, ...]) -> Path:
    """A private, empty directory tree with one directory per mount point: the guest's
    read-only ``/``. WASI has no root of its own; without one, listing ``/`` fails and
    paths outside every mount have nowhere to resolve (they fail either way)."""
    root = Path(tempfile.mkdtemp(prefix="airssys-root-"))
    for mount in mounts:
        (root / mount.guest.strip("/")).mkdir(parents=True, exist_ok=True)
    return root


def _mounts(
    policy: Policy,
    audit: AuditLog,
    grants: Grants,
    level: TrustLevel,
    report: Callable[[str, str, str], None],
    **who: str,
) -> tuple[Mount, ...]:
    """Resolve each file grant's host directory on disk (symlinks followed), hold the
    real path to the ceiling again (a link must not lead outside a root), and pin the
    directory found there (opened without following symlinks, kept open)."""
    ceiling = policy.ceiling(level)
    mounts: list[Mount] = []
    try:
        for grant in grants.files:
            mounts.append(_pinned(ceiling, audit, grant, level, report, who))
    except BaseException:
        for mount in mounts:
            if mount.pin is not None:
                mount.pin.close()
        raise
    return tuple(mounts)


def _pinned(
    ceiling: Ceiling,
    audit: AuditLog,
    grant: FileGrant,
    level: TrustLevel,
    report: Callable[[str, str, str], None],
    who: Mapping[str, str],
) -> Mount:
    try:
        real = Path(grant.host).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ManifestError(
            f"{who['label']}: capabilities.files: host directory {str(grant.host)!r} "
            f"cannot be mounted: {exc}; accepted: an existing directory"
        ) from None
    if not real.is_dir():
        raise ManifestError(
            f"{who['label']}: capabilities.files: {str(grant.host)!r} is not a directory"
        )
    if not ceiling.allows_host_path(real, grant.writable):
        reason = f"{grant.host} resolves to {real}, under no root of the {level} ceiling"
        audit.bind(
            who["label"], version=who["version"], digest=who["digest"], trust=level.value
        ).refusals([f"files {grant.guest}: {reason}"])
        raise PolicyViolation(
            f"component {who['label']!r} may not mount {grant.guest}: {reason}",
            component=who["label"],
            excesses=(f"files {grant.guest}: {reason}",),
        )
    try:
        return Mount.pinned(
            str(real),
            grant.guest,
            grant.writable,
            allowed=partial(ceiling.allows_host_path, writable=grant.writable),
            report=report,
        )
    except OSError as exc:  # a symlink appeared on the way since it was resolved
        raise ManifestError(
            f"{who['label']}: capabilities.files: host directory {str(real)!r} cannot be "
            f"opened without following a symlink: {exc}"
        ) from None
