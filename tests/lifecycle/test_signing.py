"""wasmsign2-format signatures: byte layout, cross-checks, tampering, trust outcomes.

There is no wasmsign2 binary here and neither the spec nor wasmsign2's repository
ships signed test vectors, so the format is pinned three ways:

* ``test_tiny_module_matches_hand_assembled_bytes``: the signed bytes of a tiny
  module, assembled field by field from the Signatures.md tables and wasmsign2's
  serializers (sig_sections.rs), with the RFC 8032 test-1 key (Ed25519 is
  deterministic, so the bytes are fixed; they are also kept in vectors/).
* ``spec_verify`` / ``spec_sign`` below: a second, minimal verifier and signer
  written straight from the spec text and wasmsign2's simple.rs, sharing no code
  with airssys.lifecycle; what either side signs, the other verifies.
* Component Model binaries (echo.wat compiled, and components/echo/echo.wasm when
  built) go through both, and wasmtime still loads what was signed.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
import wasmtime
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from airssys.errors import ComponentLoadError
from airssys.lifecycle._keys import key_id, load_private_key
from airssys.lifecycle._signing import (
    SignatureError,
    Verification,
    bind_manifest,
    read_signature,
    sign_component,
    verify_component,
)
from airssys.lifecycle._trust import TrustStore
from airssys.security import TrustLevel
from tests.conftest import FIXTURES, ROOT

VECTORS = Path(__file__).parent / "vectors"
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
MANIFEST = b'[component]\nname = "echo"\nversion = "0.1.0"\nwasm = "echo.wasm"\n'


# --- an independent implementation, from the spec text --------------------------------


def leb(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def spec_sections(wasm: bytes) -> list[tuple[int, bytes]]:
    """(id, whole section bytes) for each section after the 8-byte preamble."""
    assert wasm[:4] == b"\0asm"
    out, pos = [], 8
    while pos < len(wasm):
        size, payload = read_leb(wasm, pos + 1)
        out.append((wasm[pos], wasm[pos : payload + size]))
        pos = payload + size
    assert pos == len(wasm)
    return out


def custom_name(section: bytes) -> str | None:
    if section[0] != 0:
        return None
    _size, pos = read_leb(section, 1)
    n, pos = read_leb(section, pos)
    return section[pos : pos + n].decode()


def spec_key_id(public: bytes) -> bytes:
    """wasmsign2's attach_default_key_id: HMAC-SHA256 written out from RFC 2104, with
    the raw public key as the HMAC key and "key_id" as the message, 12 bytes."""
    block = public.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + b"key_id").digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in block) + inner).digest()[:12]


def spec_verify(wasm: bytes, public: Ed25519PublicKey, detached: bytes | None = None) -> bool:
    """Signatures.md, "Signature verification algorithm for an entire module"."""
    sections = spec_sections(wasm)
    if detached is None:
        first = sections[0][1]
        if custom_name(first) != "signature":
            return False
        _size, pos = read_leb(first, 1)
        n, pos = read_leb(first, pos)
        data = first[pos + n :]
        covered = wasm[8 + len(first) :]
    else:
        data, covered = detached, wasm[8:]
    assert data[:3] == b"\x01\x01\x01"  # spec_version, content_type, hash_fn (SHA-256)
    count, pos = read_leb(data, 3)
    digest = hashlib.sha256(covered).digest()
    for _ in range(count):
        size, pos = read_leb(data, pos)
        blob, pos = data[pos : pos + size], pos + size
        n_hashes, p = read_leb(blob, 0)
        hashes = [blob[p + 32 * i : p + 32 * (i + 1)] for i in range(n_hashes)]
        n_sigs, p = read_leb(blob, p + 32 * n_hashes)
        for _ in range(n_sigs):
            size, p = read_leb(blob, p)
            record, p = blob[p : p + size], p + size
            kid_len, q = read_leb(record, 0)
            alg, q = record[q + kid_len], q + kid_len + 1
            sig_len, q = read_leb(record, q)
            signature = record[q : q + sig_len]
            assert alg == 0x01
            try:
                public.verify(signature, b"wasmsig\x01\x01\x01" + b"".join(hashes))
            except InvalidSignature:
                continue
            if digest in hashes:
                return True
    assert pos == len(data)
    return False


def spec_sign(
    wasm: bytes,
    private: Ed25519PrivateKey,
    *,
    with_key_id: bool = False,
    delimiters: int = 0,
) -> bytes:
    """wasmsign2's SecretKey::sign (simple.rs), or with ``delimiters`` parts a
    rolling-hash signature as sign_multi writes for a split module."""
    body_sections = [s for _i, s in spec_sections(wasm) if custom_name(s) != "signature"]
    hashes = []
    if delimiters:
        body = b""
        rolling = hashlib.sha256()
        per = max(1, len(body_sections) // delimiters)
        for i in range(delimiters):
            part = body_sections[i * per : (i + 1) * per if i < delimiters - 1 else None]
            name = b"signature_delimiter"
            delim = bytes([0]) + leb(1 + len(name) + 16) + bytes([len(name)]) + name + bytes(16)
            chunk = b"".join(part) + delim
            body += chunk
            rolling.update(chunk)
            hashes.append(rolling.copy().digest())
    else:
        body = b"".join(body_sections)
        hashes.append(hashlib.sha256(body).digest())
    signature = private.sign(b"wasmsig\x01\x01\x01" + b"".join(hashes))
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = spec_key_id(public) if with_key_id else b""
    record = leb(len(kid)) + kid + b"\x01" + leb(64) + signature
    signed = leb(len(hashes)) + b"".join(hashes) + b"\x01" + leb(len(record)) + record
    data = b"\x01\x01\x01\x01" + leb(len(signed)) + signed
    payload = leb(9) + b"signature" + data
    return wasm[:8] + b"\x00" + leb(len(payload)) + payload + body


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(RFC8032_SEED)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def other() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def tiny() -> bytes:
    return (VECTORS / "tiny.wasm").read_bytes()


@pytest.fixture(scope="module")
def component() -> bytes:
    return bytes(wasmtime.wat2wasm((FIXTURES / "echo.wat").read_text()))


def trusted(*keys: Ed25519PrivateKey) -> list[Ed25519PublicKey]:
    return [k.public_key() for k in keys]


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# --- the byte layout ------------------------------------------------------------------


def test_tiny_module_matches_hand_assembled_bytes(rfc_key: Ed25519PrivateKey, tiny: bytes) -> None:
    body = tiny[8:]  # (module (func (export "f"))), minimal encoding already
    h = hashlib.sha256(body).digest()
    sig = rfc_key.sign(b"wasmsig" + b"\x01" + b"\x01" + b"\x01" + h)
    kid = spec_key_id(RFC8032_PUBLIC)
    record = b"\x0c" + kid + b"\x01" + b"\x40" + sig  # key id (12), Ed25519, 64 bytes
    assert len(record) == 0x4F
    signed_hashes = b"\x01" + h + b"\x01" + b"\x4f" + record  # 1 hash, 1 signature
    assert len(signed_hashes) == 0x72
    data = b"\x01" + b"\x01" + b"\x01" + b"\x01" + b"\x72" + signed_hashes
    payload = b"\x09" + b"signature" + data
    assert len(payload) == 129  # a two-byte LEB128 section size: 0x81 0x01
    expected = tiny[:8] + b"\x00\x81\x01" + payload + body

    assert sign_component(tiny, rfc_key) == expected
    assert (VECTORS / "tiny.signed.wasm").read_bytes() == expected
    assert sign_component(tiny, rfc_key, detached=True) == data
    assert (VECTORS / "tiny.wasm.sig").read_bytes() == data


def test_the_vector_key_is_rfc8032_test_1() -> None:
    key = load_private_key(VECTORS / "rfc8032-test1.key")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == RFC8032_PUBLIC
    assert key.sign(b"").hex() == (  # RFC 8032 section 7.1, TEST 1
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_stored_vectors_verify(rfc_key: Ed25519PrivateKey, tiny: bytes) -> None:
    signed = (VECTORS / "tiny.signed.wasm").read_bytes()
    detached = (VECTORS / "tiny.wasm.sig").read_bytes()
    for result in (
        verify_component(signed, trusted(rfc_key)),
        verify_component(tiny, trusted(rfc_key), detached=detached),
    ):
        assert result == Verification(
            signed=True,
            signer=key_id(rfc_key.public_key()),
            trust=TrustLevel.TRUSTED,
            reason=f"signed by {key_id(rfc_key.public_key())}",
            key_ids=(key_id(rfc_key.public_key()),),
        )
    assert spec_verify(signed, rfc_key.public_key())
    assert spec_verify(tiny, rfc_key.public_key(), detached=detached)


# --- cross-checks with the independent implementation ------------------------------


@pytest.mark.parametrize("binary", ["tiny", "component"])
def test_what_we_sign_the_spec_verifier_accepts(
    request: pytest.FixtureRequest, binary: str, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    wasm: bytes = request.getfixturevalue(binary)
    signed = sign_component(wasm, key)
    assert spec_verify(signed, key.public_key())
    assert not spec_verify(signed, other.public_key())
    assert not spec_verify(flip(signed, len(signed) - 1), key.public_key())
    detached = sign_component(wasm, key, detached=True)
    assert spec_verify(wasm, key.public_key(), detached=detached)


@pytest.mark.parametrize("binary", ["tiny", "component"])
@pytest.mark.parametrize(("with_key_id", "delimiters"), [(False, 0), (True, 0), (True, 2)])
def test_what_the_spec_signer_signs_we_verify(
    request: pytest.FixtureRequest,
    binary: str,
    with_key_id: bool,
    delimiters: int,
    key: Ed25519PrivateKey,
) -> None:
    wasm: bytes = request.getfixturevalue(binary)
    signed = spec_sign(wasm, key, with_key_id=with_key_id, delimiters=delimiters)
    result = verify_component(signed, trusted(key))
    assert result.trust is TrustLevel.TRUSTED
    assert result.signer == key_id(key.public_key())
    assert result.key_ids == ((key_id(key.public_key()),) if with_key_id else ())


def test_our_key_id_is_wasmsign2s_default_key_id(key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key.public_key()) == spec_key_id(raw).hex()
    assert spec_key_id(raw) == hmac.digest(raw, b"key_id", "sha256")[:12]


def test_a_partial_signature_does_not_cover_the_module(key: Ed25519PrivateKey) -> None:
    """A hash set that covers only the first part (a split module, more sections
    added after the last delimiter) leaves the rest unsigned: refused."""
    wasm = (VECTORS / "tiny.wasm").read_bytes()
    signed = spec_sign(wasm, key, with_key_id=True, delimiters=1)
    extended = signed + b"\x00\x05\x04note"  # a custom section after the delimiter
    with pytest.raises(SignatureError, match="contents differ"):
        verify_component(extended, trusted(key))


# --- components -----------------------------------------------------------------------


def test_a_signed_component_still_loads_in_wasmtime(
    component: bytes, key: Ed25519PrivateKey
) -> None:
    from wasmtime import component as wc

    signed = sign_component(component, key, manifest=MANIFEST)
    assert signed[:8] == component[:8] == b"\0asm\x0d\x00\x01\x00"
    wc.Component(wasmtime.Engine(), signed)  # raises if the binary were broken
    result = verify_component(signed, trusted(key), manifest=MANIFEST)
    assert result.trusted


def test_a_signed_core_module_still_loads_in_wasmtime(tiny: bytes, key: Ed25519PrivateKey) -> None:
    module = wasmtime.Module(wasmtime.Engine(), sign_component(tiny, key, manifest=MANIFEST))
    assert [e.name for e in module.exports] == ["f"]


def test_the_built_echo_component(key: Ed25519PrivateKey) -> None:
    path = ROOT / "components" / "echo" / "echo.wasm"
    if not path.is_file():
        pytest.skip("components/echo/echo.wasm is not built (airssys build components/echo)")
    wasm = path.read_bytes()
    signed = sign_component(wasm, key, manifest=MANIFEST)
    assert signed.endswith(
        wasm[8:] + b"\x00\x31\x10airssys-manifest" + hashlib.sha256(MANIFEST).digest()
    )
    assert spec_verify(signed, key.public_key())
    assert verify_component(signed, trusted(key), manifest=MANIFEST).trusted
    with pytest.raises(SignatureError, match="contents differ"):
        verify_component(flip(signed, len(signed) // 2), trusted(key))


# --- outcomes ---------------------------------------------------------------------------


def test_unsigned(tiny: bytes, key: Ed25519PrivateKey) -> None:
    result = verify_component(tiny, trusted(key))
    assert result == Verification(False, None, TrustLevel.UNKNOWN, "unsigned")
    assert verify_component(tiny, trusted(key), manifest=MANIFEST) == result
    # an unsigned binding is nobody's word: ignored, whatever it holds
    twice = bind_manifest(tiny, b"a") + bind_manifest(tiny, b"b")[len(tiny) :]
    assert verify_component(twice, trusted(key), manifest=MANIFEST) == result


def test_two_manifest_sections_in_a_signed_binary_are_refused(
    tiny: bytes, key: Ed25519PrivateKey
) -> None:
    twice = bind_manifest(tiny, b"a") + bind_manifest(tiny, b"b")[len(tiny) :]
    signed = spec_sign(twice, key, with_key_id=True)
    with pytest.raises(SignatureError, match="2 airssys-manifest sections"):
        verify_component(signed, trusted(key), manifest=b"a")


def test_removing_the_signature_section_leaves_it_unsigned(
    tiny: bytes, key: Ed25519PrivateKey
) -> None:
    signed = sign_component(tiny, key)
    first = spec_sections(signed)[0][1]
    stripped = signed[:8] + signed[8 + len(first) :]
    assert stripped == tiny
    assert not verify_component(stripped, trusted(key)).signed


def test_signed_by_a_key_not_in_the_trust_store(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    result = verify_component(sign_component(tiny, other), trusted(key))
    assert result.signed and result.signer is None
    assert result.trust is TrustLevel.UNKNOWN
    assert result.reason == (
        f"signed by a key not in the trust store (key id {key_id(other.public_key())})"
    )
    empty = verify_component(sign_component(tiny, other), [])
    assert empty.trust is TrustLevel.UNKNOWN


def test_an_unknown_signer_without_a_key_id(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    result = verify_component(spec_sign(tiny, other), trusted(key))
    assert result.reason == "signed by a key not in the trust store (no key id)"


def test_a_trust_store_is_accepted(tmp_path: Path, tiny: bytes, key: Ed25519PrivateKey) -> None:
    store = TrustStore(tmp_path / "trusted-keys")
    signed = sign_component(tiny, key)
    assert verify_component(signed, store).trust is TrustLevel.UNKNOWN
    store.add(key.public_key(), name="release")
    result = verify_component(signed, store)
    assert result.trusted and result.signer_name == "release"
    assert result.reason == f"signed by release ({key_id(key.public_key())})"


def test_one_trusted_signature_among_others_is_enough(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    # two signatures over the same hash: a stranger's (no key id) and ours
    mine = sign_component(tiny, key, detached=True)
    theirs = sign_component(tiny, other, detached=True)

    def record_of(data: bytes) -> bytes:  # the length-prefixed record, after the sig count
        return data[5 + 1 + 32 + 1 :]

    both = b"\x01" + hashlib.sha256(tiny[8:]).digest() + b"\x02"
    both += record_of(theirs) + record_of(mine)
    data = b"\x01\x01\x01\x01" + leb(len(both)) + both
    result = verify_component(tiny, trusted(key), detached=data)
    assert result.trusted
    assert result.key_ids == (key_id(other.public_key()), key_id(key.public_key()))


# --- tampering and malformed signatures -------------------------------------------------


def test_flipping_a_byte_in_any_section_is_refused(
    component: bytes, key: Ed25519PrivateKey
) -> None:
    signed = sign_component(component, key, manifest=MANIFEST)
    sections = spec_sections(signed)
    pos = 8 + len(sections[0][1])
    for _id, section in sections[1:]:
        tampered = flip(signed, pos + len(section) - 1)  # the section's last byte
        with pytest.raises(SignatureError, match="contents differ from what trusted key"):
            verify_component(tampered, trusted(key))
        pos += len(section)
    assert len(sections) > 5


def test_a_broken_signature_claiming_a_trusted_key_is_refused(
    tiny: bytes, key: Ed25519PrivateKey
) -> None:
    signed = sign_component(tiny, key)
    first_len = len(spec_sections(signed)[0][1])
    signature_byte = 8 + first_len - 10  # inside the Ed25519 signature
    hash_byte = 8 + 3 + 10 + 4 + 1 + 1 + 5  # inside the signed hash
    for index in (signature_byte, hash_byte):
        with pytest.raises(SignatureError, match="claiming trusted key .* does not verify"):
            verify_component(flip(signed, index), trusted(key))


def test_a_forged_key_id_is_refused(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    """A stranger's signature carrying a trusted key's id is not a silent 'unknown'."""
    forged = sign_component(tiny, other)
    at = forged.index(bytes.fromhex(key_id(other.public_key())))
    forged = forged[:at] + bytes.fromhex(key_id(key.public_key())) + forged[at + 12 :]
    with pytest.raises(SignatureError, match=f"claiming trusted key {key_id(key.public_key())}"):
        verify_component(forged, trusted(key))
    # the key id is an unsigned hint: the signature itself is still the stranger's
    result = verify_component(forged, trusted(other))
    assert result.trusted and result.signer == key_id(other.public_key())


def test_a_signature_section_that_is_not_first_is_refused(
    tiny: bytes, key: Ed25519PrivateKey
) -> None:
    signed = sign_component(tiny, key)
    sections = spec_sections(signed)
    moved = signed[:8] + b"".join(s for _i, s in sections[1:]) + sections[0][1]
    with pytest.raises(SignatureError, match="not the module's first section"):
        verify_component(moved, trusted(key))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the spec version is cut off"),
        (b"\x02\x01\x01\x00", "unsupported signature spec version 0x02"),
        (b"\x01\x02\x01\x00", "unsupported signature content type 0x02"),
        (b"\x01\x01\x02\x00", "unsupported signature hash function 0x02"),
        (b"\x01\x01\x01\x00", "holds no signature"),
        (b"\x01\x01\x01\x01\x04\x01abc", "a hash is cut off"),
        (b"\x01\x01\x01\x00\x00", "1 stray bytes at the end"),
        (b"\x01\x01\x01\x41", "65 signed hash sets"),
        (b"\x01\x01\x01\x01\xff\xff\xff\xff\x7f", "the length of a signed hash set"),
    ],
)
def test_malformed_signature_data_is_refused(
    tiny: bytes, key: Ed25519PrivateKey, data: bytes, message: str
) -> None:
    embedded = tiny[:8] + b"\x00" + leb(10 + len(data)) + b"\x09signature" + data + tiny[8:]
    for kwargs in ({"detached": data}, {}):
        wasm = tiny if kwargs else embedded
        with pytest.raises(SignatureError, match=message):
            verify_component(wasm, trusted(key), **kwargs)


def test_an_unsupported_algorithm_is_an_unknown_signer_unless_it_claims_a_trusted_key(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    def with_alg(signer: Ed25519PrivateKey) -> bytes:
        data = bytearray(sign_component(tiny, signer, detached=True))
        data[5 + 1 + 32 + 1 + 1 + 1 + 12] = 0x02  # the algorithm id
        return bytes(data)

    assert verify_component(tiny, trusted(key), detached=with_alg(other)).trust is (
        TrustLevel.UNKNOWN
    )
    with pytest.raises(SignatureError, match="uses algorithm 0x02"):
        verify_component(tiny, trusted(key), detached=with_alg(key))


def test_a_malformed_binary_is_a_load_error(key: Ed25519PrivateKey, tiny: bytes) -> None:
    with pytest.raises(ComponentLoadError, match="not a WebAssembly binary"):
        verify_component(b"(module)", trusted(key))
    with pytest.raises(ComponentLoadError, match="truncated"):
        sign_component(tiny[:-1], key)
    with pytest.raises(ComponentLoadError, match="version"):
        sign_component(b"\0asm\x02\x00\x00\x00", key)


# --- the manifest binding ------------------------------------------------------------------


def test_the_manifest_is_bound_inside_the_signed_part(tiny: bytes, key: Ed25519PrivateKey) -> None:
    signed = sign_component(tiny, key, manifest=MANIFEST)
    names = [custom_name(s) for _i, s in spec_sections(signed)]
    assert names == ["signature", None, None, None, None, "airssys-manifest"]
    assert signed.endswith(b"\x10airssys-manifest" + hashlib.sha256(MANIFEST).digest())
    assert spec_verify(signed, key.public_key())  # wasmsign2 still verifies the whole
    result = verify_component(signed, trusted(key), manifest=MANIFEST)
    assert result.trusted
    assert result.manifest_digest == hashlib.sha256(MANIFEST).hexdigest()
    # the binding holds without being asked about, too
    assert verify_component(signed, trusted(key)).trusted


def test_a_different_manifest_is_refused(tiny: bytes, key: Ed25519PrivateKey) -> None:
    signed = sign_component(tiny, key, manifest=MANIFEST)
    other_manifest = MANIFEST.replace(b"0.1.0", b"0.1.1")
    with pytest.raises(
        SignatureError, match="^the manifest does not match the one that was signed$"
    ):
        verify_component(signed, trusted(key), manifest=other_manifest)


def test_a_trusted_signature_without_a_binding_cannot_vouch_for_a_manifest(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    signed = sign_component(tiny, key)
    with pytest.raises(SignatureError, match="does not cover a manifest"):
        verify_component(signed, trusted(key), manifest=MANIFEST)
    # an unknown signer vouches for nothing anyway: still just unknown
    assert verify_component(signed, trusted(other), manifest=MANIFEST).trust is TrustLevel.UNKNOWN


def test_re_binding_replaces_the_manifest_section(tiny: bytes, key: Ed25519PrivateKey) -> None:
    once = bind_manifest(tiny, b"old")
    twice = bind_manifest(once, MANIFEST)
    assert twice == bind_manifest(tiny, MANIFEST)
    signed = sign_component(sign_component(tiny, key, manifest=b"old"), key, manifest=MANIFEST)
    assert verify_component(signed, trusted(key), manifest=MANIFEST).trusted


def test_detached_with_a_manifest_needs_the_binding_first(
    tiny: bytes, key: Ed25519PrivateKey
) -> None:
    with pytest.raises(ValueError, match="bind_manifest"):
        sign_component(tiny, key, manifest=MANIFEST, detached=True)
    bound = bind_manifest(tiny, MANIFEST)
    signature = sign_component(bound, key, manifest=MANIFEST, detached=True)
    assert verify_component(bound, trusted(key), manifest=MANIFEST, detached=signature).trusted
    with pytest.raises(SignatureError, match="manifest does not match"):
        verify_component(bound, trusted(key), manifest=b"x", detached=signature)


# --- signing details ---------------------------------------------------------------------


def test_detached_and_embedded_are_equivalent(tiny: bytes, key: Ed25519PrivateKey) -> None:
    """Signatures.md: embedding a detached signature is adding a `signature` section
    whose payload is those bytes (wasmsign2 attach)."""
    detached = sign_component(tiny, key, detached=True)
    attached = tiny[:8] + b"\x00" + leb(10 + len(detached)) + b"\x09signature" + detached + tiny[8:]
    assert attached == sign_component(tiny, key)
    assert verify_component(attached, trusted(key)).trusted


def test_re_signing_replaces_the_signature(
    tiny: bytes, key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    twice = sign_component(sign_component(tiny, other), key)
    assert twice == sign_component(tiny, key)
    data, _digest = read_signature(twice)
    assert data is not None and len(data.signed_hashes[0].signatures) == 1
    assert verify_component(twice, trusted(other)).trust is TrustLevel.UNKNOWN


def test_sections_are_re_encoded_minimally_as_wasmsign2_does(key: Ed25519PrivateKey) -> None:
    padded = b"\0asm\x01\x00\x00\x00" + b"\x00\x86\x80\x80\x80\x00\x04note!"  # 5-byte size
    signed = sign_component(padded, key)
    assert signed.endswith(b"\x00\x06\x04note!")
    assert spec_verify(signed, key.public_key())
    # a detached signature covers the bytes as they are
    detached = sign_component(padded, key, detached=True)
    assert verify_component(padded, trusted(key), detached=detached).trusted
    assert spec_verify(padded, key.public_key(), detached=detached)


def test_trusted_keys_must_be_ed25519_public_keys(tiny: bytes, key: Ed25519PrivateKey) -> None:
    signed = sign_component(tiny, key)
    with pytest.raises(TypeError, match="Ed25519 public keys"):
        verify_component(signed, [key])  # type: ignore[list-item]
