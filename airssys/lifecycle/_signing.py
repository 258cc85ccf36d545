"""Signing and verifying components in the wasmsign2 format.

The format is the WebAssembly tool-conventions ``Signatures.md`` as wasmsign2
implements it (spec version 1), for core modules and Component Model binaries alike:

* The **signature data** is ``spec_version`` (0x01), ``content_type`` (0x01),
  ``hash_fn`` (0x01: SHA-256), then a varuint32 count of *signed hash sets*, each a
  varuint32-length-prefixed blob holding a varuint32 count of 32-byte hashes, the
  hashes, a varuint32 count of signatures and the signatures, each one again a
  length-prefixed blob: ``key_id`` (varuint32 length, bytes; length 0 for none), the
  algorithm id (0x01: Ed25519), and the signature (varuint32 length, 64 bytes).
* The signed **message** is ``"wasmsig" ‖ 0x01 ‖ 0x01 ‖ 0x01 ‖ h1 ‖ … ‖ hn``, where a
  hash is SHA-256 over the module's sections after the signature section. Without
  ``signature_delimiter`` sections there is one hash, of all of them.
* **Embedded**, the data is the payload of a custom section named ``signature``, the
  module's first section; **detached**, it is those bytes alone and the hash covers
  every section after the preamble.

Signing here writes what ``wasmsign2 sign -K`` writes: one hash set, one signature
carrying the key id (:func:`~airssys.lifecycle._keys.key_id`); embedded, the
sections are re-encoded minimally (as wasmsign2 re-encodes them) and any earlier
``signature`` section is replaced. Verification hashes the bytes exactly as stored,
as wasmsign2's ``verify`` does, and accepts any hash set (several signers,
``wasmsign2 split`` delimiters) whose hashes include the hash of the whole module.

**Manifest binding.** Given the Component.toml bytes, :func:`sign_component` first
appends a custom section named ``airssys-manifest`` whose payload is the 32-byte
SHA-256 of those bytes (replacing any such section), then signs: the binding is
inside the signed part, so wasmsign2 still verifies the module, and
:func:`verify_component` given the manifest checks it.

**Package binding.** Given the package's listing too (every path, file digest and
executable bit of the component folder: :mod:`._listing`), a second custom section,
``airssys-package``, holds that listing next to the manifest's digest, inside the
signed part as well. :func:`verify_component` given the listing of the package as
found refuses any difference, naming the file. A trusted signature that binds no
listing (made before whole-package signatures) vouches for the wasm and the
manifest only: given a listing, it leaves the package ``unknown`` with a reason
saying to re-sign (:attr:`Verification.legacy_signer` names the key).

**Outcomes** (:class:`Verification`): no signature: ``signed=False``, trust
``unknown``; signed, but by no key of the trust store: ``signed=True``, ``signer``
None, trust ``unknown``; verified by a trusted key: trust ``trusted``. Everything else
raises :class:`SignatureError` naming what failed, never quietly reporting less: a
malformed signature section or one not first, a signature claiming a trusted key's id
that does not verify, a trusted key's signature over other contents (tampering), a
manifest that differs from the bound one, a trusted signature that binds no
manifest when one is given, or a package that differs from the bound listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidSignature

from ..errors import SignatureError as SignatureError
from ..security import TrustLevel
from ._keys import ED25519_PUBLIC_ID, PrivateKey, PublicKey, key_id, key_id_bytes
from ._listing import difference, listing_digest
from ._wasm_sections import (
    PREAMBLE,
    Section,
    custom_section,
    encode_varuint,
    parse,
    read_varuint32,
)

if TYPE_CHECKING:
    from ._trust import TrustStore

__all__ = (
    "CONTENT_TYPE",
    "DOMAIN",
    "HASH_SHA256",
    "MANIFEST_SECTION",
    "PACKAGE_SECTION",
    "SIGNATURE_SECTION",
    "SPEC_VERSION",
    "SignatureData",
    "SignatureError",
    "SignatureRecord",
    "SignedHashes",
    "Verification",
    "bind_manifest",
    "bind_package",
    "manifest_digest",
    "read_signature",
    "sign_component",
    "signed_message",
    "verify_component",
)

DOMAIN: Final = b"wasmsig"
SPEC_VERSION: Final = 0x01
CONTENT_TYPE: Final = 0x01  # a WebAssembly module (components use it too)
HASH_SHA256: Final = 0x01
ED25519: Final = ED25519_PUBLIC_ID
SIGNATURE_SECTION: Final = "signature"
DELIMITER_SECTION: Final = "signature_delimiter"
MANIFEST_SECTION: Final = "airssys-manifest"
PACKAGE_SECTION: Final = "airssys-package"
# wasmsign2's limits
MAX_HASHES: Final = 64
MAX_SIGNATURES: Final = 256
_HASH_SIZE: Final = 32
_ED25519_SIGNATURE_SIZE: Final = 64


# --- the signature data ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """One signature over a hash set: the signer's key id (empty: none), the algorithm
    id (0x01: Ed25519) and the signature bytes."""

    key_id: bytes
    alg_id: int
    signature: bytes

    def encode(self) -> bytes:
        return (
            encode_varuint(len(self.key_id))
            + self.key_id
            + bytes([self.alg_id])
            + encode_varuint(len(self.signature))
            + self.signature
        )


@dataclass(frozen=True, slots=True)
class SignedHashes:
    """Hashes (32 bytes each) and the signatures over them."""

    hashes: tuple[bytes, ...]
    signatures: tuple[SignatureRecord, ...]

    def encode(self) -> bytes:
        out = bytearray(encode_varuint(len(self.hashes)))
        for h in self.hashes:
            out += h
        out += encode_varuint(len(self.signatures))
        for record in self.signatures:
            blob = record.encode()
            out += encode_varuint(len(blob)) + blob
        return bytes(out)


@dataclass(frozen=True, slots=True)
class SignatureData:
    """The payload of a ``signature`` section (or a detached signature)."""

    signed_hashes: tuple[SignedHashes, ...]
    spec_version: int = SPEC_VERSION
    content_type: int = CONTENT_TYPE
    hash_fn: int = HASH_SHA256

    def encode(self) -> bytes:
        out = bytearray(
            encode_varuint(self.spec_version)
            + encode_varuint(self.content_type)
            + encode_varuint(self.hash_fn)
            + encode_varuint(len(self.signed_hashes))
        )
        for signed in self.signed_hashes:
            blob = signed.encode()
            out += encode_varuint(len(blob)) + blob
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> SignatureData:
        """Parse signature data; :class:`SignatureError` naming what is malformed."""
        reader = _Reader(data, "the signature data")
        spec_version = reader.byte7("the spec version")
        if spec_version != SPEC_VERSION:
            raise SignatureError(
                f"unsupported signature spec version {spec_version:#04x} (supported: 0x01)"
            )
        content_type = reader.byte7("the content type")
        if content_type != CONTENT_TYPE:
            raise SignatureError(f"unsupported signature content type {content_type:#04x}")
        hash_fn = reader.byte7("the hash function")
        if hash_fn != HASH_SHA256:
            raise SignatureError(f"unsupported signature hash function {hash_fn:#04x}")
        count = reader.varuint("the number of signed hash sets")
        if count > MAX_HASHES:
            raise SignatureError(
                f"malformed signature: {count} signed hash sets (max {MAX_HASHES})"
            )
        sets = tuple(_decode_signed_hashes(reader.blob("a signed hash set")) for _ in range(count))
        reader.end()
        return cls(sets, spec_version, content_type, hash_fn)


def _decode_signed_hashes(data: bytes) -> SignedHashes:
    reader = _Reader(data, "a signed hash set")
    count = reader.varuint("the number of hashes")
    if count > MAX_HASHES:
        raise SignatureError(f"malformed signature: {count} hashes in a set (max {MAX_HASHES})")
    hashes = tuple(reader.take(_HASH_SIZE, "a hash") for _ in range(count))
    n_signatures = reader.varuint("the number of signatures")
    if n_signatures > MAX_SIGNATURES:
        raise SignatureError(
            f"malformed signature: {n_signatures} signatures in a set (max {MAX_SIGNATURES})"
        )
    records = []
    for _ in range(n_signatures):
        record = _Reader(reader.blob("a signature"), "a signature")
        kid = record.blob("a key id")
        alg_id = record.take(1, "an algorithm id")[0]
        signature = record.blob("a signature")
        # bytes after the signature inside its record are ignored, as wasmsign2 does
        records.append(SignatureRecord(kid, alg_id, signature))
    reader.end()
    return SignedHashes(hashes, tuple(records))


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def _fail(self, detail: str) -> SignatureError:
        return SignatureError(f"malformed signature section: {detail} in {self.what}")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self._fail(f"{what} is cut off")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte7(self, what: str) -> int:
        value = self.take(1, what)[0]
        if value & 0x80:
            raise self._fail(f"{what} is not a one-byte varint")
        return value

    def varuint(self, what: str) -> int:
        from ..errors import ComponentLoadError

        try:
            value, self.pos = read_varuint32(self.data, self.pos, what)
        except ComponentLoadError:
            raise self._fail(f"{what} is not a varuint32") from None
        return value

    def blob(self, what: str) -> bytes:
        return self.take(self.varuint(f"the length of {what}"), what)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self._fail(f"{len(self.data) - self.pos} stray bytes at the end")


def signed_message(hashes: Sequence[bytes]) -> bytes:
    """What Ed25519 signs: ``"wasmsig" ‖ spec version ‖ content type ‖ hash fn ‖ hashes``."""
    return DOMAIN + bytes([SPEC_VERSION, CONTENT_TYPE, HASH_SHA256]) + b"".join(hashes)


def manifest_digest(manifest: bytes) -> bytes:
    return hashlib.sha256(manifest).digest()


# --- signing ---------------------------------------------------------------------


def _without(sections: list[Section], name: str) -> list[Section]:
    return [s for s in sections if s.name != name]


def bind_manifest(wasm: bytes, manifest: bytes) -> bytes:
    """``wasm`` with an ``airssys-manifest`` custom section (payload: the SHA-256 of
    ``manifest``) as its last section, replacing any earlier one (and dropping an
    earlier ``airssys-package`` section, which a new manifest makes stale); other
    sections are kept byte for byte. Signing afterwards covers it."""
    return bind_package(wasm, manifest, None)


def bind_package(wasm: bytes, manifest: bytes, listing: bytes | None) -> bytes:
    """``wasm`` bound to its manifest and, when given, to its package's ``listing``
    (an ``airssys-package`` section after the ``airssys-manifest`` one), each
    replacing any earlier one; other sections are kept byte for byte."""
    preamble, sections = parse(wasm)
    kept = [s for s in sections if s.name not in (MANIFEST_SECTION, PACKAGE_SECTION)]
    bound = custom_section(MANIFEST_SECTION, manifest_digest(manifest))
    if listing is not None:
        bound += custom_section(PACKAGE_SECTION, listing)
    return preamble + b"".join(s.raw(wasm) for s in kept) + bound


def _record(private_key: PrivateKey, hashes: Sequence[bytes]) -> SignatureData:
    signature = private_key.sign(signed_message(hashes))
    record = SignatureRecord(key_id_bytes(private_key.public_key()), ED25519, signature)
    return SignatureData((SignedHashes(tuple(hashes), (record,)),))


def _bound(wasm: bytes, sections: Sequence[Section], name: str) -> bytes | None:
    bound = [s for s in sections if s.name == name]
    if not bound:
        return None
    if len(bound) > 1:
        raise SignatureError(f"the module holds {len(bound)} {name} sections")
    return bound[0].content(wasm)


def _bound_digest(wasm: bytes, sections: Sequence[Section]) -> bytes | None:
    return _bound(wasm, sections, MANIFEST_SECTION)


def sign_component(
    wasm: bytes,
    private_key: PrivateKey,
    *,
    manifest: bytes | None = None,
    package: bytes | None = None,
    detached: bool = False,
) -> bytes:
    """Sign a module or component with an Ed25519 key, in the wasmsign2 format.

    Embedded (the default): returns the signed binary, a ``signature`` custom section
    first, then the other sections re-encoded minimally (an earlier ``signature``
    section is dropped). ``manifest`` (the Component.toml bytes) and ``package`` (the
    package's listing, :func:`~._listing.listing`; it needs ``manifest``) are bound
    first: see :func:`bind_package`.

    ``detached=True``: returns the signature bytes alone, over the binary as given
    (every byte after the preamble). A detached signature cannot add sections, so
    with ``manifest`` (and ``package``) the binary must already hold the matching
    bindings (``bind_package`` it, keep that binary, sign it); else
    :class:`ValueError`.
    """
    if package is not None and manifest is None:
        raise ValueError("a package listing is bound with its manifest: pass manifest too")
    preamble, sections = parse(wasm)
    if detached:
        if manifest is not None and (
            _bound_digest(wasm, sections) != manifest_digest(manifest)
            or (package is not None and _bound(wasm, sections, PACKAGE_SECTION) != package)
        ):
            raise ValueError(
                "a detached signature cannot add the manifest or package binding: "
                "bind_manifest() (bind_package() for a whole package) the binary first and "
                "ship that binary with the signature"
            )
        return _record(private_key, [hashlib.sha256(wasm[PREAMBLE:]).digest()]).encode()
    if manifest is not None:
        wasm = bind_package(wasm, manifest, package)
        preamble, sections = parse(wasm)
    body = b"".join(s.canonical(wasm) for s in _without(sections, SIGNATURE_SECTION))
    data = _record(private_key, [hashlib.sha256(body).digest()])
    return preamble + custom_section(SIGNATURE_SECTION, data.encode()) + body


# --- verifying -------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_component` found.

    ``signed``: a signature section (or detached signature) is present. ``signer``:
    the key id of the trusted key that verified it, else None. ``trust``: TRUSTED when a
    trusted key verified it, else UNKNOWN. ``reason``: one line saying which.
    ``key_ids``: the key ids the signatures claim (hex; a signature without one is
    not listed). ``signer_name``: the trusted key's name in the store, if any.
    ``manifest_digest``: the SHA-256 (hex) bound in the signed part, if any.
    ``package_digest``: the SHA-256 (hex) of the package listing bound there, if any.
    ``legacy_signer``: a trusted key whose signature binds no package listing, when
    a listing was asked about (the result is then ``unknown``: re-sign the package).
    """

    signed: bool
    signer: str | None
    trust: TrustLevel
    reason: str
    key_ids: tuple[str, ...] = field(default=())
    signer_name: str | None = None
    manifest_digest: str | None = None
    package_digest: str | None = None
    legacy_signer: str | None = None

    @property
    def trusted(self) -> bool:
        return self.trust is TrustLevel.TRUSTED

    def to_dict(self) -> dict[str, object]:
        return {
            "signed": self.signed,
            "signer": self.signer,
            "signer_name": self.signer_name,
            "trust": self.trust.value,
            "reason": self.reason,
            "key_ids": list(self.key_ids),
            "manifest_digest": self.manifest_digest,
            "package_digest": self.package_digest,
            "legacy_signer": self.legacy_signer,
        }


@dataclass(frozen=True, slots=True)
class _Trusted:
    key_id: str
    key_id_bytes: bytes
    public_key: PublicKey
    name: str | None


def _trusted_keys(trust: TrustStore | Sequence[PublicKey]) -> list[_Trusted]:
    from ._trust import TrustStore

    if isinstance(trust, TrustStore):
        return [
            _Trusted(k.key_id, bytes.fromhex(k.key_id), k.public_key, k.name) for k in trust.list()
        ]
    out = []
    for pk in trust:
        if not isinstance(pk, PublicKey):
            raise TypeError(f"trusted keys must be Ed25519 public keys, not {type(pk).__name__}")
        out.append(_Trusted(key_id(pk), key_id_bytes(pk), pk, None))
    return out


def _verifies(public_key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _read(wasm: bytes, detached: bytes | None) -> tuple[SignatureData | None, bytes, list[Section]]:
    _preamble, sections = parse(wasm)
    if detached is not None:
        return SignatureData.decode(detached), hashlib.sha256(wasm[PREAMBLE:]).digest(), sections
    found = [i for i, s in enumerate(sections) if s.name == SIGNATURE_SECTION]
    if not found:
        return None, hashlib.sha256(wasm[PREAMBLE:]).digest(), sections
    if found[0] != 0:
        raise SignatureError(
            "the signature section is not the module's first section (it must come first)"
        )
    first = sections[0]
    data = SignatureData.decode(first.content(wasm))
    return data, hashlib.sha256(wasm[first.end :]).digest(), sections[1:]


def read_signature(
    wasm: bytes, *, detached: bytes | None = None
) -> tuple[SignatureData | None, bytes]:
    """The signature data of ``wasm`` (None: unsigned) and the SHA-256 of the part it
    must cover. Raises :class:`SignatureError` for a malformed or misplaced signature
    section, :class:`~airssys.errors.ComponentLoadError` for a malformed binary."""
    data, digest, _signed = _read(wasm, detached)
    return data, digest


def verify_component(
    wasm: bytes,
    trust: TrustStore | Sequence[PublicKey],
    *,
    manifest: bytes | None = None,
    detached: bytes | None = None,
    package: bytes | None = None,
) -> Verification:
    """Check the signatures of ``wasm`` against the trusted keys (a
    :class:`~airssys.lifecycle.TrustStore` or a list of public keys).

    See the module docstring for the outcomes. ``detached``: the signature bytes, for
    a binary signed without embedding them. ``manifest``: the Component.toml bytes to
    check against the binding in the signed part. ``package``: the listing of the
    package as found (:func:`~._listing.listing`), to check against the bound one.
    """
    data, digest, signed_sections = _read(wasm, detached)
    if data is None:  # an unsigned binary vouches for nothing, its sections included
        return Verification(False, None, TrustLevel.UNKNOWN, "unsigned")
    bound = _bound_digest(wasm, signed_sections)
    bound_hex = bound.hex() if bound is not None else None
    bound_listing = _bound(wasm, signed_sections, PACKAGE_SECTION)
    listing_hex = listing_digest(bound_listing) if bound_listing is not None else None

    keys = _trusted_keys(trust)
    by_id = {k.key_id_bytes: k for k in keys}
    claimed = tuple(
        dict.fromkeys(r.key_id.hex() for s in data.signed_hashes for r in s.signatures if r.key_id)
    )
    verified: list[_Trusted] = []
    failures: list[str] = []
    n_records = 0
    for signed in data.signed_hashes:
        message = signed_message(signed.hashes)
        for record in signed.signatures:
            n_records += 1
            claimed_key = by_id.get(record.key_id) if record.key_id else None
            if record.alg_id != ED25519 or len(record.signature) != _ED25519_SIGNATURE_SIZE:
                if claimed_key is not None:
                    what = (
                        f"algorithm {record.alg_id:#04x}"
                        if record.alg_id != ED25519
                        else f"a {len(record.signature)}-byte Ed25519 signature"
                    )
                    failures.append(
                        f"the signature claiming trusted key {claimed_key.key_id} uses "
                        f"{what}, which cannot verify"
                    )
                continue
            candidates = [claimed_key] if claimed_key is not None else keys
            signer = next(
                (k for k in candidates if _verifies(k.public_key, record.signature, message)),
                None,
            )
            if signer is None:
                if claimed_key is not None:
                    failures.append(
                        f"the signature claiming trusted key {claimed_key.key_id} does not "
                        "verify (the signature section was altered, or signed with another key)"
                    )
                continue
            if digest in signed.hashes:
                verified.append(signer)
            else:
                failures.append(
                    f"the module's contents differ from what trusted key {signer.key_id} "
                    "signed (tampered, or changed after signing)"
                )
    if n_records == 0:
        raise SignatureError("the signature section holds no signature")
    if failures:
        more = f" (and {len(failures) - 1} more failure(s))" if len(failures) > 1 else ""
        raise SignatureError(failures[0] + more)

    if manifest is not None:
        expected = manifest_digest(manifest)
        if bound is not None and bound != expected:
            raise SignatureError("the manifest does not match the one that was signed")
        if bound is None and verified:
            raise SignatureError(
                f"the signature by {verified[0].key_id} does not cover a manifest (sign with "
                "the manifest bound: airssys sign --manifest), so it cannot vouch for this one"
            )

    if package is not None and bound_listing is not None:
        changed = difference(bound_listing, package)
        if changed is not None:
            raise SignatureError(f"{changed}; the signature covers the whole package")

    if verified:
        signer = verified[0]
        label = f"{signer.name} ({signer.key_id})" if signer.name else signer.key_id
        if package is not None and bound_listing is None:
            return Verification(
                True,
                None,
                TrustLevel.UNKNOWN,
                f"signed by {label} before whole-package signatures: the signature covers "
                "the wasm and Component.toml only, not the package's other files; re-sign "
                "the package (airssys sign FOLDER) to make it trusted",
                key_ids=claimed,
                manifest_digest=bound_hex,
                legacy_signer=signer.key_id,
            )
        return Verification(
            True,
            signer.key_id,
            TrustLevel.TRUSTED,
            f"signed by {label}",
            key_ids=claimed,
            signer_name=signer.name,
            manifest_digest=bound_hex,
            package_digest=listing_hex,
        )
    which = f" (key id {', '.join(claimed)})" if claimed else " (no key id)"
    return Verification(
        True,
        None,
        TrustLevel.UNKNOWN,
        f"signed by a key not in the trust store{which}",
        key_ids=claimed,
        manifest_digest=bound_hex,
        package_digest=listing_hex,
    )
