"""From a component source to what a ComponentActor needs: load, limits, admission.

A source is a Component.toml (or its directory), a .wasm/.wat path, wasm bytes,
WAT text, a parsed manifest or a loaded Component. Admission puts the component's
declared capabilities (its manifest's ``[capabilities]``, or ``capabilities=`` from
the caller) through the operator's policy for its trust level, once, before
anything starts: a component declaring more than its ceiling never starts, and
the refusal is audited with every excess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

from .._logging import get_logger
from ..errors import PolicyViolation
from ..manifest import ComponentManifest, load_manifest
from ..runtime import Component, Limits, Runtime, looks_like_wat
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
    else:
        declared = Grants.from_dict(dict(capabilities), where=f"capabilities of {label}")
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
    return Admission(policy.effective(declared, level), level, version, digest)
