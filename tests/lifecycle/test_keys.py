"""Ed25519 key files: wasmsign2's raw format, PEM/DER, OpenSSH; key ids; keygen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from airssys.errors import AirssysError
from airssys.lifecycle._keys import (
    KeyFormatError,
    encode_private_key,
    encode_public_key,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    parse_private_key,
    parse_public_key,
    public_key_path,
)

VECTORS = Path(__file__).parent / "vectors"
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
# wasmsign2's default key id of the RFC 8032 test-1 key:
# HMAC-SHA256(key=public key, msg="key_id")[:12] (checked independently in test_signing)
RFC8032_KEY_ID = "58fb94a6933f01b8b7707a8b"


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- generate_keypair -------------------------------------------------------------------


def test_generate_writes_wasmsign2_raw_keys(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "release.key")
    assert (private, public) == (tmp_path / "release.key", tmp_path / "release.key.pub")
    secret, pub = private.read_bytes(), public.read_bytes()
    assert len(secret) == 65 and secret[0] == 0x81  # 0x81 ‖ seed ‖ public key
    assert len(pub) == 33 and pub[0] == 0x01  # 0x01 ‖ public key
    assert secret[33:] == pub[1:]
    key = Ed25519PrivateKey.from_private_bytes(secret[1:33])
    assert raw_public(key) == pub[1:]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644


def test_generate_sets_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private, _public = generate_keypair(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_generate_pem(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "k.pem", fmt="pem")
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert key_id(load_private_key(private).public_key()) == key_id(load_public_key(public))


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    first, first_pub = generate_keypair(tmp_path / "k")
    before = first.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "k")
    assert first.read_bytes() == before
    # only the public half is in the way: nothing is left behind
    first.unlink()
    with pytest.raises(FileExistsError, match=r"k\.pub exists"):
        generate_keypair(tmp_path / "k")
    assert not first.exists() and first_pub.exists()


def test_generate_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "k").symlink_to(target)
    with pytest.raises(FileExistsError):
        generate_keypair(tmp_path / "k")
    assert not target.exists()


def test_generated_keys_differ(tmp_path: Path) -> None:
    a, _ = generate_keypair(tmp_path / "a")
    b, _ = generate_keypair(tmp_path / "b")
    assert a.read_bytes() != b.read_bytes()


# --- formats ----------------------------------------------------------------------------


def test_the_rfc8032_vector_in_every_format() -> None:
    raw_secret = b"\x81" + RFC8032_SEED + RFC8032_PUBLIC
    raw_public_bytes = b"\x01" + RFC8032_PUBLIC
    assert (VECTORS / "rfc8032-test1.key").read_bytes() == raw_secret
    assert (VECTORS / "rfc8032-test1.key.pub").read_bytes() == raw_public_bytes
    keys = [
        load_private_key(VECTORS / "rfc8032-test1.key"),
        load_private_key(VECTORS / "rfc8032-test1.pem"),
    ]
    publics = [
        load_public_key(VECTORS / "rfc8032-test1.key.pub"),
        load_public_key(VECTORS / "rfc8032-test1.pub.pem"),
        *(k.public_key() for k in keys),
    ]
    assert {raw_public(k) for k in keys} == {RFC8032_PUBLIC}
    assert {key_id(p) for p in publics} == {RFC8032_KEY_ID}
    assert encode_private_key(keys[1]) == raw_secret
    assert encode_public_key(publics[1]) == raw_public_bytes


@pytest.mark.parametrize("fmt", ["raw", "pem", "der", "openssh"])
def test_public_key_formats_round_trip(fmt: str) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    assert key_id(parse_public_key(encode_public_key(key, fmt))) == key_id(key)


@pytest.mark.parametrize("fmt", ["raw", "pem", "der"])
def test_private_key_formats_round_trip(fmt: str) -> None:
    key = Ed25519PrivateKey.generate()
    assert raw_public(parse_private_key(encode_private_key(key, fmt))) == raw_public(key)


def test_openssh_keys() -> None:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = encode_public_key(key.public_key(), "openssh").rstrip() + b" me@host\n"
    assert raw_public(parse_private_key(private)) == raw_public(key)
    assert key_id(parse_public_key(public)) == key_id(key.public_key())


def test_an_inconsistent_raw_secret_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(KeyFormatError, match="inconsistent"):
        parse_private_key(b"\x81" + RFC8032_SEED + raw_public(other))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01" + RFC8032_PUBLIC, "is a public key; signing needs the secret key"),
        (b"hello", "not a private key in a known format"),
        (b"", "not a private key in a known format"),
    ],
)
def test_bad_private_keys(data: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        parse_private_key(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x81" + RFC8032_SEED + RFC8032_PUBLIC, "is a secret key"),
        (b"\x02" + RFC8032_PUBLIC, "not a public key in a known format"),
        (b"\x01" + RFC8032_PUBLIC[:-1], "not a public key in a known format"),
    ],
)
def test_bad_public_keys(data: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        parse_public_key(data)


def test_a_private_pem_is_not_a_public_key() -> None:
    pem = encode_private_key(Ed25519PrivateKey.generate(), "pem")
    with pytest.raises(KeyFormatError, match="is a private key, not a public key"):
        parse_public_key(pem)
    with pytest.raises(KeyFormatError, match="is a public key"):
        parse_private_key(encode_public_key(Ed25519PrivateKey.generate().public_key(), "pem"))


def test_other_algorithms_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFormatError, match="only Ed25519"):
        parse_private_key(pem)
    with pytest.raises(KeyFormatError, match="only Ed25519"):
        parse_public_key(public)


def test_an_encrypted_key_is_refused() -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(KeyFormatError, match="encrypted"):
        parse_private_key(pem)


def test_missing_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match="no key file at"):
        load_private_key(tmp_path / "nope")
    with pytest.raises(AirssysError, match="is a directory"):
        load_public_key(tmp_path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 70_000)
    with pytest.raises(KeyFormatError, match="too large"):
        load_public_key(big)


def test_public_key_path() -> None:
    assert public_key_path("a/b.key") == Path("a/b.key.pub")
