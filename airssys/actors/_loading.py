"""From a component source to what a ComponentActor needs: load, limits, admission.

A source is a Component.toml (or its directory), a .wasm/.wat path, wasm bytes,
WAT text, a parsed manifest or a loaded Component. Admission puts the component's
declared capabilities (its manifest's ``[capabilities]``, or ``capabilities=`` from
the caller) through the operator's policy for its trust level, once, before
anything starts: a component declaring more than its ceiling never starts, and
the refusal is audited with every excess.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

from .._logging import get_logger
from ..errors import ManifestError, PolicyViolation
from ..manifest import ComponentManifest, load_manifest
from ..runtime import Component, Limits, Mount, Runtime, looks_like_wat
from ..security import AuditLog, Grants, Policy, TrustLevel

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
    """The ``files`` grants, their host directories resolved on disk, after a
    read-only root holding only their mount points (so ``/`` lists the mounts)."""
    root: Path | None = None
    """That root's directory on the host (the system removes it when it closes)."""


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
    mounts = _mounts(policy, audit, declared, level, label=label, version=version, digest=digest)
    root = _mount_points(mounts) if mounts else None
    if root is not None:
        mounts = (Mount(str(root), "/", writable=False), *mounts)
    return Admission(policy.effective(declared, level), level, version, digest, mounts, root)


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
    **who: str,
) -> tuple[Mount, ...]:
    """Resolve each file grant's host directory on disk (symlinks followed) and hold
    the real path to the ceiling again: a link must not lead outside a root."""
    ceiling = policy.ceiling(level)
    mounts = []
    for grant in grants.files:
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
        mounts.append(Mount(str(real), grant.guest, grant.writable))
    return tuple(mounts)
