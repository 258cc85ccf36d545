"""Whole-package signatures: every file of a component folder is bound into the
signed part of its wasm, and any difference refuses the install, naming the file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from wasmtime import component as wc

from airssys.lifecycle import (
    PACKAGE_SECTION,
    SignatureError,
    Store,
    TrustStore,
    folder_listing,
    install_package,
    package_listing,
    parse_wasm_sections,
    sign_component,
    sign_folder,
    verify_component,
)
from airssys.lifecycle._listing import difference, read_listing
from tests.lifecycle.conftest import make_archive, tiny_wasm, write_component
from tests.lifecycle.test_signing import spec_verify

Cli = Callable[..., subprocess.CompletedProcess[str]]
FILES = {"data/prices.csv": b"apple,1\n", "tools/run.sh": b"#!/bin/sh\necho hi\n"}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trust(tmp_path: Path, key: Ed25519PrivateKey) -> TrustStore:
    store = TrustStore(tmp_path / "trusted")
    store.add(key.public_key(), name="release")
    return store


@pytest.fixture
def signed(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """A component folder with data files, one executable, signed whole."""
    folder = write_component(tmp_path / "pkg", files=FILES)
    (folder / "tools/run.sh").chmod(0o755)
    sign_folder(folder, key)
    return folder


def nothing_installed(store: Store) -> bool:
    return store.list() == []


# --- the binding -------------------------------------------------------------------------


def test_a_package_signed_whole_installs_trusted(
    store: Store, signed: Path, trust: TrustStore, key: Ed25519PrivateKey
) -> None:
    result = install_package(store, signed, trust=trust)
    assert result.installed.trust == "trusted"
    assert result.verification.package_digest is not None
    listed = read_listing(package_listing(store.tree(result.installed)))
    assert set(listed) == {"Component.toml", "data/prices.csv", "tools/run.sh", "tiny.wasm"}
    assert listed["tools/run.sh"][0] == "x" and listed["tiny.wasm"] == ("w", "-")


def test_the_binding_is_a_signed_section_wasmsign2_verifies(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    wasm = (signed / "tiny.wasm").read_bytes()
    names = [s.name for s in parse_wasm_sections(wasm)[1]]
    assert names[0] == "signature" and names[-2:] == ["airssys-manifest", PACKAGE_SECTION]
    # an independent verifier of the tool-conventions format (no airssys code)
    assert spec_verify(wasm, key.public_key())
    wc.Component(wasmtime.Engine(), wasm)  # still a component that loads


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: (f / "data/prices.csv").write_bytes(b"apple,1000\n"), "data/prices.csv"),
        (lambda f: (f / "data/extra.csv").write_bytes(b"x"), "data/extra.csv was added"),
        (lambda f: (f / "data/prices.csv").unlink(), "data/prices.csv was removed"),
        (lambda f: (f / "tools/run.sh").chmod(0o644), "tools/run.sh had its executable bit"),
        (lambda f: (f / "data/prices.csv").chmod(0o755), "data/prices.csv had its executable"),
        (lambda f: (f / "new").mkdir() or (f / "new/x").write_bytes(b""), "new/x was added"),
    ],
)
def test_any_difference_is_refused_naming_the_file(
    store: Store, signed: Path, trust: TrustStore, change: Callable[[Path], object], named: str
) -> None:
    change(signed)
    with pytest.raises(SignatureError, match=f"refusing to install tiny@0.1.0.*{named}"):
        install_package(store, signed, trust=trust)
    assert nothing_installed(store)


def test_an_unknown_signer_s_binding_is_checked_too(store: Store, signed: Path) -> None:
    (signed / "data/extra.csv").write_bytes(b"x")
    with pytest.raises(SignatureError, match="data/extra.csv was added"):
        install_package(store, signed, trust=[])
    assert nothing_installed(store)


def test_a_detached_package_signature(
    store: Store, tmp_path: Path, key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    folder = write_component(tmp_path / "d", files=FILES)
    sig = folder / "tiny.wasm.sig"
    assert sign_folder(folder, key, detached=sig).signature == sig
    assert install_package(Store(tmp_path / "one"), folder, trust=trust).installed.trust == (
        "trusted"
    )
    (folder / "data/prices.csv").write_bytes(b"changed")
    with pytest.raises(SignatureError, match="data/prices.csv was changed"):
        install_package(store, folder, trust=trust)
    # signing again writes the signature where the folder keeps it
    assert sign_folder(folder, key).signature == sig
    assert install_package(store, folder, trust=trust).installed.trust == "trusted"


def test_an_archive_of_a_signed_folder_lists_the_same(
    store: Store, signed: Path, tmp_path: Path, trust: TrustStore
) -> None:
    (signed / "empty").mkdir()  # empty directories are not listed (git keeps none)
    archive = make_archive(signed, tmp_path / "pkg.tar.gz", top="pkg")
    assert install_package(store, archive, trust=trust).installed.trust == "trusted"


# --- packages signed before -----------------------------------------------------------------


def test_a_package_signed_before_installs_unknown_saying_to_re_sign(
    store: Store, tmp_path: Path, key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    folder = write_component(tmp_path / "old", files=FILES)
    manifest = (folder / "Component.toml").read_bytes()
    (folder / "tiny.wasm").write_bytes(sign_component(tiny_wasm(), key, manifest=manifest))
    result = install_package(store, folder, trust=trust)
    assert (result.installed.trust, result.installed.signer) == ("unknown", None)
    assert result.verification.legacy_signer == trust.list()[0].key_id
    assert "before whole-package signatures" in result.verification.reason
    assert "re-sign" in result.verification.reason
    # the wasm and manifest alone still verify as before
    wasm = (folder / "tiny.wasm").read_bytes()
    assert verify_component(wasm, trust, manifest=manifest).trusted
    # re-signed whole: trusted (the same files, a new wasm: a new version is needed)
    sign_folder(folder, key)
    assert install_package(Store(tmp_path / "again"), folder, trust=trust).installed.trust == (
        "trusted"
    )


# --- the listing ----------------------------------------------------------------------------


def test_the_listing_leaves_out_the_wasm_and_its_signature(signed: Path) -> None:
    wasm, manifest, listing = folder_listing(signed)
    assert wasm == (signed / "tiny.wasm").resolve()
    assert manifest == (signed / "Component.toml").read_bytes()
    (signed / "tiny.wasm").write_bytes(b"\0asm\x0d\x00\x01\x00")  # the wasm is signed itself
    (signed / "tiny.wasm.sig").write_bytes(b"sig")
    assert folder_listing(signed)[2] == listing
    assert listing.decode().splitlines()[0] == "airssys-package-tree/1"


def test_difference_names_every_kind_of_change() -> None:
    base = b"airssys-package-tree/1\nf " + b"a" * 64 + b" a.txt\nw - x.wasm\n"
    assert difference(base, base) is None
    moved = b"airssys-package-tree/1\nf " + b"a" * 64 + b" a.txt\nw - y.wasm\n"
    assert "x.wasm" in (difference(base, moved) or "")
    with pytest.raises(SignatureError, match="not an airssys-package-tree/1 listing"):
        read_listing(b"something else\n")
    with pytest.raises(SignatureError, match="malformed at line 2"):
        read_listing(b"airssys-package-tree/1\nq - a\n")


def test_signing_a_package_needs_its_manifest(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="manifest"):
        sign_component(tiny_wasm(), key, package=b"airssys-package-tree/1\n")


# --- the CLI ---------------------------------------------------------------------------------


@pytest.mark.timeout(300)  # CLI subprocesses
def test_cli_signs_and_verifies_a_folder_whole(cli: Cli, tmp_path: Path) -> None:
    def ok(*args: str | Path) -> str:
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    folder = write_component(tmp_path / "app", files=FILES)
    ok("keygen", tmp_path / "k")
    ok("config", "trust", "add", f"{tmp_path / 'k'}.pub", "--name", "release")
    signed = json.loads(ok("sign", folder, "--key", tmp_path / "k", "--json"))
    assert signed["output"] == str((folder / "tiny.wasm").resolve()) and signed["package_digest"]
    assert json.loads(ok("verify", folder, "--json"))["trust"] == "trusted"
    installed = json.loads(ok("install", folder, "--json"))
    assert installed["trust"] == "trusted"

    (folder / "data/prices.csv").write_bytes(b"apple,0\n")
    refused = cli("verify", folder)
    assert refused.returncode == 1
    assert "data/prices.csv was changed after signing" in refused.stderr

    # the wasm with the manifest of its folder binds the whole package too
    ok("sign", folder / "tiny.wasm", "--key", tmp_path / "k", "-m", folder / "Component.toml")
    (folder / "data/new.csv").write_bytes(b"")
    refused = cli("install", folder)
    assert refused.returncode == 1 and "data/new.csv was added" in refused.stderr


def test_the_signed_folder_keeps_the_wasm_mode(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    folder = write_component(tmp_path / "m")
    (folder / "tiny.wasm").chmod(0o640)
    sign_folder(folder, key)
    assert stat.S_IMODE(os.stat(folder / "tiny.wasm").st_mode) == 0o640
