"""The whole airssys exception hierarchy.

One root, :class:`AirssysError`, and one base per subsystem. Where it keeps
ordinary ``except`` clauses working, an error also subclasses the matching
built-in (a deadline is a :class:`TimeoutError`, a bad manifest a
:class:`ValueError`). Cancellation is never wrapped.

Every exception the host side raises is defined here (the packages re-export
theirs, so ``airssys.lifecycle.SignatureError`` is ``airssys.errors.SignatureError``);
a typed error from another node is looked up here by name. The SDK's errors
(``airssys.sdk``: ``StorageError``, ``HttpError``, ...) are the guest's view of a
failed host call, raised inside a component, and live with the SDK.

This module imports nothing of ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = (
    "ActorDeadError",
    "ActorError",
    "ActorStartError",
    "AirssysError",
    "AskTimeout",
    "AuditLogError",
    "BuildError",
    "BuilderMissing",
    "CacheError",
    "CapabilityDenied",
    "ChildAlreadyPresent",
    "ChildAlreadyStarted",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ClusterError",
    "CodecError",
    "ComponentLoadError",
    "ComponentTrap",
    "ConfigError",
    "ControlError",
    "DataDirLocked",
    "DeadlineExceeded",
    "DeploymentError",
    "ExecutionError",
    "FuelExhausted",
    "HandlerError",
    "HttpError",
    "HttpTimeout",
    "InitError",
    "InstanceClosed",
    "InstanceDead",
    "InvalidHttpRequest",
    "InvalidKey",
    "InvalidName",
    "JournalCorrupt",
    "JournalError",
    "JournalLocked",
    "KeyFormatError",
    "MailboxFull",
    "ManifestError",
    "MemoryLimitExceeded",
    "MissingExport",
    "MountChanged",
    "NameTaken",
    "NodeError",
    "NodeNotRunning",
    "NotACounter",
    "PackageInUse",
    "PackageNotFound",
    "PayloadTooLarge",
    "PolicyViolation",
    "ProcessError",
    "ProcessTimeout",
    "ProtocolError",
    "QuotaExceeded",
    "ReplayDivergence",
    "ReplyTooLarge",
    "ResourceExhausted",
    "ResponseTooLarge",
    "RestartIntensityExceeded",
    "RuntimeClosed",
    "SignatureError",
    "StorageError",
    "StoreError",
    "SupervisorError",
    "TooManyRedirects",
    "TracingUnavailable",
    "TrustStoreError",
    "UnsupportedImport",
    "UpdateFailed",
    "VersionConflict",
)


class AirssysError(Exception):
    """Root of every error airssys raises on purpose."""


# --- data at the bottom: names, codecs and manifests ------------------------------


class InvalidName(AirssysError, ValueError):
    """A name, address, sender or topic breaks the naming rule (see airssys.names)."""


class CodecError(AirssysError, ValueError):
    """A payload's multicodec prefix is unknown or malformed, or its body does not decode."""


class ManifestError(AirssysError, ValueError):
    """A Component.toml is missing, malformed, or holds a bad key or value."""


# --- runtime: loading components -----------------------------------------------


class ComponentLoadError(AirssysError, ValueError):
    """A component could not be loaded: malformed bytes or a world mismatch."""


class MissingExport(ComponentLoadError):
    """The component lacks an export the host needs (``handle-message``)."""


class UnsupportedImport(ComponentLoadError):
    """The component imports something the host does not provide."""


class RuntimeClosed(AirssysError):
    """The runtime (engine, linker, ticker) was closed and cannot be used."""


class CacheError(AirssysError):
    """The on-disk compile cache is unsafe: a directory or entry other users could
    write. It holds native code that would be executed, so nothing is loaded from it."""


# --- runtime: executing a call -------------------------------------------------


class PayloadTooLarge(AirssysError, ValueError):
    """A payload exceeds what the receiving component accepts; nothing was called."""


class HandlerError(AirssysError):
    """The component's handler returned ``err(reason)``: the message failed, the
    instance is fine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InstanceClosed(AirssysError):
    """The instance was closed by its owner and its Store released."""


class ExecutionError(AirssysError):
    """A wasm call ended abnormally; the instance is dead afterwards."""

    def __init__(self, message: str, *, component: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.component = component
        self.detail = detail


class ComponentTrap(ExecutionError):
    """The guest trapped (``unreachable``, out-of-bounds access, a panic...)."""


class FuelExhausted(ExecutionError):
    """The message used up its fuel budget (``fuel-per-message``)."""


class DeadlineExceeded(ExecutionError, TimeoutError):
    """The message ran past its wall-clock deadline (``timeout-ms``)."""


class MemoryLimitExceeded(ExecutionError, MemoryError):
    """The component needed more linear memory than its cap (``memory``)."""


class ReplyTooLarge(ExecutionError, PayloadTooLarge):
    """The component answered more than its lane can carry back; wasmtime traps the
    instance when that happens, so it is dead afterwards."""


class ResourceExhausted(ExecutionError, MemoryError):
    """The host itself ran short (e.g. virtual memory to reserve for an instance's
    linear memory): not the component's fault, and not a trap."""


class InstanceDead(AirssysError):
    """The instance trapped earlier; wasm forbids entering it again. Make a new one."""


# --- actors ----------------------------------------------------------------------


class ActorError(AirssysError):
    """Base for actor-system errors."""


class ActorDeadError(ActorError):
    """The actor is stopped (or never existed), so it cannot take the message."""


class ActorStartError(ActorError):
    """The actor failed while starting; the cause is chained."""


class NameTaken(ActorError, ValueError):
    """An actor with that name is already registered under the same parent."""


class MailboxFull(ActorError):
    """The bounded mailbox is full and its strategy is ``raise``."""


class AskTimeout(ActorError, TimeoutError):
    """No reply arrived before the ask's deadline."""


class SupervisorError(ActorError):
    """Base for supervision errors."""


class RestartIntensityExceeded(SupervisorError):
    """More restarts than ``intensity`` within ``period`` seconds: the supervisor gave up."""


class ChildNotFound(SupervisorError, KeyError):
    """The supervisor has no child spec with that id (OTP: ``not_found``)."""

    def __str__(self) -> str:  # a KeyError would quote its message
        return str(self.args[0]) if self.args else ""


class ChildRunning(SupervisorError):
    """The child is running: ``terminate_child`` it first (OTP: ``running``)."""


class ChildRestarting(SupervisorError):
    """The child is waiting for its supervisor to start it again (OTP: ``restarting``)."""


class ChildAlreadyPresent(SupervisorError, NameTaken):
    """A stopped child keeps its spec under that id: ``restart_child`` or ``delete_child``
    it first (OTP: ``already_present``)."""


class ChildAlreadyStarted(SupervisorError, NameTaken):
    """A child with that id is running or restarting (OTP: ``already_started``)."""


# --- security ----------------------------------------------------------------------


class CapabilityDenied(AirssysError, PermissionError):
    """A component reached for something its grants do not allow (see airssys.security).

    The message reads ``capability denied: <kind> <resource>; granted: <...>``; the
    same text reaches a guest as ``err(...)``. ``kind``, ``resource`` and
    ``component`` say what was refused, to whom.
    """

    def __init__(
        self, message: str, *, kind: str = "", resource: str = "", component: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.resource = resource
        self.component = component

    def __str__(self) -> str:  # an OSError would render its errno fields
        return str(self.args[0]) if self.args else ""


class PolicyViolation(AirssysError, PermissionError):
    """A component declares more than its trust level's ceiling allows, or asks for a
    trust level the policy refuses; it does not start. The message lists every
    excess; ``excesses`` holds them one by one."""

    def __init__(
        self, message: str, *, component: str = "", excesses: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.component = component
        self.excesses = excesses

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- host services -------------------------------------------------------------------


class ResponseTooLarge(AirssysError):
    """An outbound HTTP response's body is larger than the service's cap; it was cut off
    there (never buffered past the cap) and nothing of it is returned."""


class StorageError(AirssysError):
    """A key-value storage operation failed (see airssys.storage): the backend is
    closed or broken, a stored value is not what the operation needs, an import file
    is malformed. Nothing of the failed operation was written."""


class QuotaExceeded(StorageError):
    """A write would take storage past its quota; nothing of it was written.

    ``quota`` says which limit (``"bytes"`` or ``"keys"``), ``limit`` its value,
    ``usage`` what was in use before the write, ``size`` the write's size in bytes
    (keys plus values) and ``scope`` whose storage it is (a component's, or a shared
    bucket's).
    """

    def __init__(
        self,
        message: str,
        *,
        quota: str = "",
        limit: int = 0,
        usage: int = 0,
        size: int = 0,
        scope: str = "",
    ) -> None:
        super().__init__(message)
        self.quota = quota
        self.limit = limit
        self.usage = usage
        self.size = size
        self.scope = scope


class DeploymentError(AirssysError, ValueError):
    """A deployment file is missing, malformed, or holds a bad key or value."""


class NodeNotRunning(AirssysError):
    """Nothing answers at the control socket."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no airssys node is running at {path} (start one with: airssys serve DEPLOYMENT.toml)"
        )
        self.path = path


class ControlError(AirssysError):
    """The node refused the request; ``kind`` is the error's class on the node."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.message = message
        self.kind = kind


class NodeError(AirssysError):
    """The node cannot start: its run dir is unsafe, or another node holds it."""


class ProtocolError(AirssysError, ValueError):
    """A control request the node cannot take: not JSON, an unknown op, a bad field."""


class UpdateFailed(ActorError):
    """The new version did not take over (it failed to load, start or answer the
    probe, or the actor stopped meanwhile); the running version is untouched."""


class ReplayDivergence(ExecutionError):
    """Replaying the journal did not do what the journal says was done."""


class TracingUnavailable(AirssysError, ImportError):
    """Tracing was asked for without the ``otel`` extra installed."""


class JournalError(AirssysError):
    """The journal cannot be opened, read or written."""


class JournalCorrupt(JournalError):
    """A journal has an unreadable record with whole records after it: damage, not a
    write cut short by a kill. The component does not start; ``airssys journal check``
    shows the damage and ``airssys journal repair`` keeps every readable record."""


class JournalLocked(JournalError):
    """Another system (in this process or another) is writing this journal."""


class ClusterError(AirssysError):
    """The cluster cannot do what was asked: NATS is unreachable, the connection is
    closed, or a message cannot be handed over."""


class ConfigError(AirssysError, ValueError):
    """An unknown key, a bad value, or a config file that cannot be read or written."""


class InvalidKey(StorageError, ValueError):
    """A key (or cursor, or prefix) is not bytes/str, is longer than
    :data:`MAX_KEY_BYTES`, or is text that does not encode to UTF-8."""


class NotACounter(StorageError, ValueError):
    """``increment`` found a value that is not a decimal integer, or the result would
    not fit a signed 64-bit integer; nothing was written."""


class InitError(AirssysError):
    """The project cannot be created: a bad name, or a folder that is in the way."""


class BuildError(AirssysError):
    """componentize-py refused the component; ``output`` holds the component's traceback."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class BuilderMissing(BuildError):
    """componentize-py (the ``build`` extra) is not installed or cannot be imported."""


class ProcessError(AirssysError):
    """A granted process could not be run (missing, not executable...)."""


class ProcessTimeout(ProcessError, TimeoutError):
    """The process ran past its timeout; its process tree was killed. ``stdout`` and
    ``stderr`` hold what it wrote until then (capped as usual)."""

    def __init__(self, message: str, *, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr

    def __str__(self) -> str:  # a TimeoutError would render errno fields
        return str(self.args[0]) if self.args else ""


class HttpError(AirssysError):
    """An outbound HTTP call failed: no connection, a broken or malformed response..."""


class HttpTimeout(HttpError, TimeoutError):
    """The call (every hop, connect and read) ran past its ``timeout_s``."""


class TooManyRedirects(HttpError):
    """The redirects went on past the service's ``max_redirects``."""


class InvalidHttpRequest(HttpError, ValueError):
    """The request is refused before anything is sent: its scheme, method or a header."""


class KeyFormatError(AirssysError, ValueError):
    """A key file is not an Ed25519 key in a format read here, or is inconsistent."""


class StoreError(AirssysError):
    """The package store is unusable, a blob is missing or corrupt, or an install
    was refused (a bad source, an unsafe archive, a wrong digest)."""


class PackageNotFound(StoreError, LookupError):
    """No installed package has that name (or name and version)."""


class VersionConflict(StoreError):
    """``name@version`` is already installed with other bytes: versions are immutable."""


class PackageInUse(StoreError):
    """Uninstall refused: the package is running (pass ``force=True`` to remove it)."""


class SignatureError(AirssysError, ValueError):
    """A signature is present but cannot be accepted: malformed, not verifying for the
    key it claims, covering other contents, or bound to another manifest."""


class TrustStoreError(AirssysError):
    """The trust store is unsafe or unreadable, or holds no key by that id or name."""


class AuditLogError(AirssysError, PermissionError):
    """The audit log's file cannot be trusted to keep records: a link, not a regular
    file, another user's, or its mode cannot be made 0600."""


class MountChanged(PolicyViolation):
    """A mounted directory is no longer the one admitted: it was moved away, or another
    directory or a symlink stands at its path, or the path left the policy's roots. The
    instance does not start (the refusal is audited); ``excesses`` names the mount."""


class DataDirLocked(AirssysError):
    """Another system of the same name (in this process or another) uses this data
    directory: its storage and journals would have two writers."""
