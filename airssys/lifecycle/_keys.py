"""Ed25519 signing keys, in the file formats wasmsign2 reads and writes.

Formats read (by content, whatever the file is called):

* **wasmsign2 raw** (what ``wasmsign2 keygen`` writes, and what :func:`generate_keypair`
  writes): a public key is ``0x01`` followed by its 32 bytes (33 bytes in all); a
  secret key is ``0x81`` followed by the 32-byte seed and the 32-byte public key (65
  bytes). These are the encodings of the WebAssembly tool-conventions
  ``Signatures.md``.
* **PEM** (``-----BEGIN PRIVATE KEY-----`` PKCS#8, ``-----BEGIN PUBLIC KEY-----``
  SubjectPublicKeyInfo) and the same structures as **DER**, as ``openssl genpkey
  -algorithm ed25519`` writes them.
* **OpenSSH** (``ssh-ed25519 AAAA...`` public keys, unencrypted ``-----BEGIN OPENSSH
  PRIVATE KEY-----`` files), as ``ssh-keygen -t ed25519`` writes them.

Encrypted private keys are refused (there is no prompt for a passphrase).

The **key id** (:func:`key_id`) is wasmsign2's default key identifier:
HMAC-SHA256 keyed with the 32 raw public key bytes over the message ``"key_id"``,
first 12 bytes. Signatures made here carry it (as ``wasmsign2 sign -K`` does); it is
shown as 24 hex digits.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import KeyFormatError as KeyFormatError

__all__ = (
    "ED25519_PUBLIC_ID",
    "ED25519_SECRET_ID",
    "KeyFormatError",
    "PrivateKey",
    "PublicKey",
    "encode_private_key",
    "encode_public_key",
    "generate_keypair",
    "key_id",
    "key_id_bytes",
    "load_private_key",
    "load_public_key",
    "parse_private_key",
    "parse_public_key",
    "public_key_path",
)

PublicKey = Ed25519PublicKey
PrivateKey = Ed25519PrivateKey

ED25519_PUBLIC_ID: Final = 0x01  # also the signature algorithm id
ED25519_SECRET_ID: Final = 0x81
KEY_ID_SIZE: Final = 12
_MAX_KEY_FILE: Final = 64 * 1024


def key_id_bytes(public_key: PublicKey) -> bytes:
    """wasmsign2's default key id: HMAC-SHA256(key=raw public key, msg="key_id")[:12]."""
    return hmac.digest(_raw_public(public_key), b"key_id", hashlib.sha256)[:KEY_ID_SIZE]


def key_id(public_key: PublicKey) -> str:
    """The key id as 24 lowercase hex digits (stable: derived from the key alone)."""
    return key_id_bytes(public_key).hex()


def _raw_public(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def encode_public_key(public_key: PublicKey, fmt: str = "raw") -> bytes:
    """``raw`` (wasmsign2: ``0x01`` + 32 bytes), ``pem`` or ``der`` (SubjectPublicKeyInfo),
    or ``openssh``."""
    if fmt == "raw":
        return bytes([ED25519_PUBLIC_ID]) + _raw_public(public_key)
    if fmt == "pem":
        return public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if fmt == "der":
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if fmt == "openssh":
        return (
            public_key.public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            + b"\n"
        )
    raise ValueError(f"unknown public key format {fmt!r}; accepted: raw, pem, der, openssh")


def encode_private_key(private_key: PrivateKey, fmt: str = "raw") -> bytes:
    """``raw`` (wasmsign2: ``0x81`` + seed + public key), ``pem`` or ``der`` (PKCS#8)."""
    if fmt == "raw":
        seed = private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return bytes([ED25519_SECRET_ID]) + seed + _raw_public(private_key.public_key())
    encodings = {"pem": serialization.Encoding.PEM, "der": serialization.Encoding.DER}
    if fmt not in encodings:
        raise ValueError(f"unknown private key format {fmt!r}; accepted: raw, pem, der")
    return private_key.private_bytes(
        encodings[fmt], serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def parse_public_key(data: bytes, *, source: str = "the public key") -> PublicKey:
    """An Ed25519 public key from wasmsign2 raw, PEM, DER or OpenSSH bytes."""
    if len(data) == 33 and data[0] == ED25519_PUBLIC_ID:
        return Ed25519PublicKey.from_public_bytes(data[1:])
    if len(data) == 65 and data[0] == ED25519_SECRET_ID:
        raise KeyFormatError(f"{source} is a secret key (wasmsign2 format), not a public key")
    text = data.strip()
    loaded: object
    try:
        if text.startswith(b"-----BEGIN"):
            if b"PRIVATE KEY" in text.split(b"\n", 1)[0]:
                raise KeyFormatError(f"{source} is a private key, not a public key")
            loaded = serialization.load_pem_public_key(text)
        elif text.startswith((b"ssh-", b"ecdsa-", b"sk-")):
            loaded = serialization.load_ssh_public_key(text.split(b"\n", 1)[0].strip())
        else:
            loaded = serialization.load_der_public_key(data)
    except KeyFormatError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFormatError(
            f"{source} is not a public key in a known format (wasmsign2 raw, PEM, DER or OpenSSH)"
        ) from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise KeyFormatError(
            f"{source} is a {_kind(loaded)} key; only Ed25519 keys sign components"
        )
    return loaded


def parse_private_key(data: bytes, *, source: str = "the private key") -> PrivateKey:
    """An Ed25519 private key from wasmsign2 raw, PEM/DER PKCS#8 or OpenSSH bytes."""
    if len(data) == 65 and data[0] == ED25519_SECRET_ID:
        key = Ed25519PrivateKey.from_private_bytes(data[1:33])
        if _raw_public(key.public_key()) != data[33:]:
            raise KeyFormatError(
                f"{source} is inconsistent: its public half does not match its seed"
            )
        return key
    if len(data) == 33 and data[0] == ED25519_PUBLIC_ID:
        raise KeyFormatError(f"{source} is a public key; signing needs the secret key")
    text = data.strip()
    loaded: object
    try:
        if text.startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            loaded = serialization.load_ssh_private_key(text, password=None)
        elif text.startswith(b"-----BEGIN"):
            if b"PUBLIC KEY" in text.split(b"\n", 1)[0]:
                raise KeyFormatError(f"{source} is a public key; signing needs the secret key")
            loaded = serialization.load_pem_private_key(text, password=None)
        elif text.startswith(b"ssh-"):
            raise KeyFormatError(f"{source} is a public key; signing needs the secret key")
        else:
            loaded = serialization.load_der_private_key(data, password=None)
    except KeyFormatError:
        raise
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise KeyFormatError(
            f"{source} is encrypted; decrypt it first (no passphrase prompt here)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFormatError(
            f"{source} is not a private key in a known format (wasmsign2 raw, PEM, DER or OpenSSH)"
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFormatError(
            f"{source} is a {_kind(loaded)} key; only Ed25519 keys sign components"
        )
    return loaded


def _kind(key: object) -> str:
    name = type(key).__name__
    for suffix in ("PublicKey", "PrivateKey"):
        name = name.removesuffix(suffix)
    return name.lstrip("_") or "different"


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise KeyFormatError(f"no key file at {path}") from None
    except IsADirectoryError:
        raise KeyFormatError(f"{path} is a directory, not a key file") from None
    if len(data) > _MAX_KEY_FILE:
        raise KeyFormatError(f"{path} is too large to be a key file")
    return data


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Read a public key file (wasmsign2 raw, PEM, DER or OpenSSH)."""
    path = Path(path)
    return parse_public_key(_read_key_file(path), source=str(path))


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a private key file (wasmsign2 raw, PEM/DER PKCS#8 or OpenSSH, unencrypted)."""
    path = Path(path)
    return parse_private_key(_read_key_file(path), source=str(path))


def public_key_path(path: str | os.PathLike[str]) -> Path:
    """Where :func:`generate_keypair` puts the public half of the key at ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".pub")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (refusing an existing file, symlinks included) holding ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def generate_keypair(path: str | os.PathLike[str], *, fmt: str = "raw") -> tuple[Path, Path]:
    """A new Ed25519 key pair: the secret key at ``path`` (mode 0600) and the public key
    at ``path.pub`` (mode 0644), in wasmsign2's raw format by default (``fmt="pem"``:
    PKCS#8 and SubjectPublicKeyInfo). Refuses to overwrite either file
    (:class:`FileExistsError`); nothing is left behind when it fails."""
    private_path = Path(path)
    public_path = public_key_path(private_path)
    for existing in (private_path, public_path):
        if existing.exists() or existing.is_symlink():
            raise FileExistsError(f"{existing} exists: refusing to overwrite a key file")
    key = Ed25519PrivateKey.generate()
    private_data = encode_private_key(key, fmt)
    public_data = encode_public_key(key.public_key(), fmt)
    try:
        _write_new(private_path, private_data, 0o600)
    except FileExistsError:
        raise FileExistsError(f"{private_path} exists: refusing to overwrite a key file") from None
    try:
        _write_new(public_path, public_data, 0o644)
    except BaseException as exc:
        private_path.unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            raise FileExistsError(
                f"{public_path} exists: refusing to overwrite a key file"
            ) from None
        raise
    return private_path, public_path
