"""``airssys keygen|sign|verify`` and ``airssys config trust add|remove|list``.

Thin wrappers over :mod:`airssys.lifecycle` (``_keys``, ``_signing``, ``_trust``).
Keys are Ed25519 in wasmsign2's formats; signatures are wasmsign2's (embedded
``signature`` section or detached bytes); a component folder is signed and verified
whole (its wasm bound to its Component.toml and the listing of every file); the
trust store is
``<config>/trusted-keys`` (``$AIRSSYS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/airssys``,
else ``~/.config/airssys``). See docs/signing.md.

Results go to stdout (``--json``: one JSON document); failures are one line on stderr
and exit status 1 (``verify``: a signature that is present but bad; with
``--require-trusted``, anything short of a trusted signer).

:func:`register` adds the commands to the root app; :data:`config_app` is the
``config`` group (``trust`` lives in it), open to more ``config`` commands.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._dirs import airssys_dir, make_private_dir, write_atomic
from ..errors import AirssysError
from ._output import out_console

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..lifecycle import Verification

__all__ = ("config_app", "register", "trust_app")

config_app = typer.Typer(
    help="airssys configuration (trusted signing keys: config trust).", no_args_is_help=True
)
trust_app = typer.Typer(
    help="The public keys whose signatures make a component trusted.", no_args_is_help=True
)
config_app.add_typer(trust_app, name="trust")

_out = out_console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, soft_wrap=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _default_key() -> Path:
    return airssys_dir("config") / "keys" / "signing.key"


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AirssysError(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise AirssysError(f"{path} is a directory, not {what}") from None


def _write_atomic(path: Path, data: bytes, *, like: Path | None = None) -> None:
    """Replace ``path`` with ``data`` via a temp file in its folder and a rename; the
    mode is that of ``like`` (or of ``path`` if it exists, else 0644)."""
    mode = 0o644
    for source in (like, path):
        if source is not None and source.exists():
            mode = source.stat().st_mode & 0o777
            break
    write_atomic(path, data, mode)


# --- keygen ------------------------------------------------------------------------


def keygen(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write the secret key; the public key goes to PATH.pub "
            "(default: <config>/keys/signing.key).",
            show_default=False,
        ),
    ] = None,
    pem: Annotated[
        bool,
        typer.Option(
            "--pem", help="Write PEM (PKCS#8, SubjectPublicKeyInfo) instead of wasmsign2's raw."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Generate an Ed25519 signing key pair (secret key mode 0600; no overwrite).

    The files are in wasmsign2's raw format, so `wasmsign2 sign -k PATH` and
    `wasmsign2 verify -K PATH.pub` use them as they are.
    """
    from ..lifecycle import generate_keypair, key_id, load_public_key

    if path is None:
        path = _default_key()
        folder = path.parent
        make_private_dir(folder, lambda exc: AirssysError(f"cannot create {folder}: {exc}"))
    elif not path.parent.is_dir():
        raise AirssysError(f"the folder {path.parent} does not exist")
    private, public = generate_keypair(path, fmt="pem" if pem else "raw")
    kid = key_id(load_public_key(public))
    if json_output:
        _print_json({"private_key": str(private), "public_key": str(public), "key_id": kid})
        return
    _out.print(Text.assemble(("key id ", "bold"), (kid, "green")))
    _out.print(f"secret key: {private} (keep it private: mode 0600)")
    _out.print(f"public key: {public}")
    _out.print(f"trust its signatures with: airssys config trust add {public}")


# --- sign --------------------------------------------------------------------------


def sign(
    file: Annotated[
        Path,
        typer.Argument(
            help="The .wasm module or component to sign, or a component folder (signed "
            "whole: its wasm bound to its Component.toml and every other file)."
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            "-k",
            help="The secret key (wasmsign2 raw, PEM, DER or OpenSSH; "
            "default: <config>/keys/signing.key).",
            show_default=False,
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            "-m",
            help="Bind this Component.toml: its SHA-256 goes in the signed part (and, "
            "when FILE is the wasm of that folder, the listing of the folder's files).",
        ),
    ] = None,
    detached: Annotated[
        Path | None,
        typer.Option(
            "--detached",
            "-S",
            help="Write the signature to this file instead of embedding it.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the signed binary here (default: in place)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Sign a module or component (wasmsign2 format; replaces an earlier one).

    Embedded: a `signature` section is put first. --detached: the signature
    goes to its own file; with --manifest the binary still gains the manifest
    section, so it is rewritten too. A component folder (or a wasm with the
    --manifest of its folder) is signed whole: every file of the package is listed
    in the signed part, so install refuses the package if any file changes.
    """
    from ..lifecycle import (
        SIGNATURE_SECTION,
        bind_package,
        key_id,
        load_private_key,
        manifest_digest,
        parse_wasm_sections,
        sign_component,
    )

    key_path = key if key is not None else _default_key()
    if key is None and not key_path.exists():
        raise AirssysError(
            f"no signing key at {key_path}: create one with `airssys keygen` or pass --key"
        )
    private_key = load_private_key(key_path)
    if file.is_dir():
        if manifest is not None or output is not None:
            raise AirssysError(
                f"{file} is a component folder, signed whole in place: --manifest and "
                "--output apply to a .wasm file"
            )
        _sign_folder(file, private_key, detached, json_output)
        return
    wasm = _read(file, "WebAssembly binary")
    _preamble, sections = parse_wasm_sections(wasm)
    replaced = detached is None and any(s.name == SIGNATURE_SECTION for s in sections)
    manifest_bytes = _read(manifest, "manifest") if manifest is not None else None
    listing = _package_listing(file, manifest) if manifest is not None else None
    target = output if output is not None else file
    if detached is None:
        signed = sign_component(wasm, private_key, manifest=manifest_bytes, package=listing)
        _write_atomic(target, signed, like=file)
    else:
        module = bind_package(wasm, manifest_bytes, listing) if manifest_bytes is not None else wasm
        signature = sign_component(
            module, private_key, manifest=manifest_bytes, package=listing, detached=True
        )
        if module != wasm or output is not None:
            _write_atomic(target, module, like=file)
        _write_atomic(detached, signature)
    kid = key_id(private_key.public_key())
    digest = manifest_digest(manifest_bytes).hex() if manifest_bytes is not None else None
    if json_output:
        _print_json(
            {
                "file": str(file),
                "output": str(target),
                "signature": str(detached) if detached is not None else None,
                "key_id": kid,
                "manifest_digest": digest,
                "package_digest": _digest(listing),
                "replaced_signature": replaced,
            }
        )
        return
    line = Text.assemble(("signed ", "green"), str(target), " with key ", (kid, "bold"))
    if detached is not None:
        line.append(f" (detached signature: {detached})")
    _out.print(line)
    if digest is not None:
        _out.print(f"manifest {manifest} bound (sha256 {digest})")
    if listing is not None:
        _out.print(_package_line(listing))
    elif manifest is not None:
        _out.print(
            f"{file} is not the wasm of {manifest}'s folder: only the manifest is bound "
            "(sign the folder to bind every file of the package)",
            style="yellow",
        )
    if replaced:
        _out.print("an earlier signature was replaced", style="yellow")


def _folder(folder: Path) -> tuple[Path, bytes, bytes]:
    from ..lifecycle import folder_listing

    return folder_listing(folder)


def _package_listing(file: Path, manifest: Path) -> bytes | None:
    """The listing of ``manifest``'s folder when ``file`` is that package's wasm."""
    from ..lifecycle import folder_listing

    try:
        wasm, _manifest, listing = folder_listing(manifest.resolve().parent)
    except AirssysError:
        return None  # not a package folder: the manifest alone is bound
    return listing if wasm == file.resolve() else None


def _digest(listing: bytes | None) -> str | None:
    import hashlib

    return hashlib.sha256(listing).hexdigest() if listing is not None else None


def _package_line(listing: bytes) -> str:
    entries = listing.count(b"\n") - 1
    return f"package bound: {entries} paths listed (sha256 {_digest(listing)})"


def _sign_folder(
    folder: Path, private_key: Ed25519PrivateKey, detached: Path | None, json_output: bool
) -> None:
    from ..lifecycle import key_id, sign_folder

    signed = sign_folder(folder, private_key, detached=detached)
    kid = key_id(private_key.public_key())
    if json_output:
        _print_json(
            {
                "file": str(folder),
                "output": str(signed.wasm),
                "signature": str(signed.signature) if signed.signature is not None else None,
                "key_id": kid,
                "package_digest": _digest(signed.listing),
            }
        )
        return
    line = Text.assemble(("signed ", "green"), str(signed.wasm), " with key ", (kid, "bold"))
    if signed.signature is not None:
        line.append(f" (detached signature: {signed.signature})")
    _out.print(line)
    _out.print(_package_line(signed.listing))


# --- verify ------------------------------------------------------------------------


def _show(file: Path, result: Verification) -> None:
    if result.trusted:
        _out.print(Text.assemble(("trusted", "bold green"), f": {file} {result.reason}"))
    elif result.signed:
        _out.print(Text.assemble(("unknown signer", "bold yellow"), f": {file} is {result.reason}"))
        _out.print("trust the signer with: airssys config trust add PUBKEY")
    else:
        _out.print(Text.assemble(("unsigned", "bold yellow"), f": {file} carries no signature"))
    if result.manifest_digest is not None:
        unverified = "" if result.trusted else " (unverified: no trusted signature covers it)"
        _out.print(f"bound manifest: sha256 {result.manifest_digest}{unverified}")
    if result.package_digest is not None:
        unverified = "" if result.trusted else " (unverified: no trusted signature covers it)"
        _out.print(f"bound package: sha256 {result.package_digest}{unverified}")


def verify(
    file: Annotated[
        Path,
        typer.Argument(
            help="The .wasm module or component to check, or a component folder (checked "
            "whole: its wasm, Component.toml, every other file and <wasm>.sig if any)."
        ),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", "-m", help="Check that the signature binds this Component.toml."
        ),
    ] = None,
    detached: Annotated[
        Path | None,
        typer.Option("--detached", "-S", help="A detached signature file to check."),
    ] = None,
    key: Annotated[
        list[Path] | None,
        typer.Option(
            "--key",
            "-K",
            help="Trust this public key instead of the trust store (repeatable).",
            show_default=False,
        ),
    ] = None,
    require_trusted: Annotated[
        bool,
        typer.Option("--require-trusted", help="Exit 1 unless a trusted key signed it."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Check a module's signature: trusted, unknown signer, or unsigned.

    Exits 1 with the reason when a signature is present but bad: tampered,
    malformed, claiming a trusted key it does not match, bound to another
    manifest, or (for a package) a file added, removed or changed since signing.
    """
    from ..lifecycle import SignatureError, TrustStore, load_public_key, verify_component

    listing: bytes | None = None
    manifest_bytes: bytes | None
    if file.is_dir():
        if manifest is not None:
            raise AirssysError(f"{file} is a component folder: its own Component.toml is checked")
        file, manifest_bytes, listing = _folder(file)
        beside = file.with_name(file.name + ".sig")
        if detached is None and beside.is_file():
            detached = beside
    else:
        manifest_bytes = _read(manifest, "manifest") if manifest is not None else None
        listing = _package_listing(file, manifest) if manifest is not None else None
    wasm = _read(file, "WebAssembly binary")
    signature = _read(detached, "detached signature") if detached is not None else None
    trust = [load_public_key(k) for k in key] if key else TrustStore()
    try:
        result = verify_component(
            wasm, trust, manifest=manifest_bytes, detached=signature, package=listing
        )
    except SignatureError as exc:
        if json_output:
            _print_json({"file": str(file), "valid": False, "error": str(exc)})
        raise SignatureError(f"{file}: {exc}") from exc
    if json_output:
        _print_json({"file": str(file), "valid": True, **result.to_dict()})
    else:
        _show(file, result)
    if require_trusted and not result.trusted:
        why = "unsigned" if not result.signed else "the signer is not trusted"
        _err.print(
            Text.assemble(("error: ", "red"), f"{file} is not signed by a trusted key ({why})")
        )
        raise typer.Exit(1)


# --- config trust ------------------------------------------------------------------


@trust_app.command("add")
def trust_add(
    public_key: Annotated[
        Path,
        typer.Argument(
            metavar="PUBKEY", help="A public key file (wasmsign2 raw, PEM, DER or OpenSSH)."
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="A name to refer to the key by.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Trust a public key: components it signs verify as trusted."""
    from ..lifecycle import TrustStore

    store = TrustStore()
    kid = store.add(public_key, name=name)
    added = store.find(kid)
    if json_output:
        _print_json(added.to_dict())
        return
    _out.print(Text.assemble(("trusted ", "green"), (added.label, "bold"), f" from {public_key}"))


@trust_app.command("remove")
def trust_remove(
    key: Annotated[
        str,
        typer.Argument(metavar="ID|NAME", help="The key id (or a unique 8+ digit prefix) or name."),
    ],
    json_output: JsonOption = False,
) -> None:
    """Stop trusting a key. Installed packages it signed are unknown from now on
    (their trust is decided whenever they are used); they are listed."""
    from ..lifecycle import TrustStore

    removed = TrustStore().remove(key)
    signed = _signed_by(removed.key_id)
    if json_output:
        _print_json({**removed.to_dict(), "packages": signed})
        return
    _out.print(Text.assemble(("removed ", "yellow"), (removed.label, "bold")))
    if signed:
        _out.print(
            f"{len(signed)} installed package(s) signed by it are unknown now: {', '.join(signed)}",
            style="yellow",
        )


def _signed_by(key_id: str) -> list[str]:
    """The installed packages (default store) whose signer is ``key_id``."""
    from ..lifecycle import Store, StoreError

    try:
        rows = Store().list()
    except StoreError as exc:  # the key is removed all the same; say why none are listed
        _err.print(f"the installed packages could not be read: {exc}")
        return []
    return [row.spec for row in rows if key_id in (row.signer, row.revoked)]


@trust_app.command("list")
def trust_list(json_output: JsonOption = False) -> None:
    """List the trusted keys."""
    from ..lifecycle import TrustStore

    store = TrustStore()
    keys = store.list()
    if json_output:
        _print_json([k.to_dict() for k in keys])
        return
    if not keys:
        _err.print(
            f"no trusted keys in {store.directory} (add one: airssys config trust add PUBKEY)"
        )
        return
    table = Table(box=None, pad_edge=False)
    for header in ("key id", "name", "added", "file"):
        table.add_column(header, overflow="fold")
    for k in keys:
        added = (
            datetime.fromtimestamp(k.added, UTC).strftime("%Y-%m-%d %H:%M")
            if k.added is not None
            else "-"
        )
        table.add_row(k.key_id, k.name or "-", added, str(k.path))
    _out.print(table)


def register(app: typer.Typer, *, epilog: str | None = None) -> None:
    """Add ``keygen``, ``sign``, ``verify`` and the ``config`` group to ``app``."""
    app.command("keygen", epilog=epilog)(keygen)
    app.command("sign", epilog=epilog)(sign)
    app.command("verify", epilog=epilog)(verify)
    app.add_typer(config_app, name="config", epilog=epilog)
