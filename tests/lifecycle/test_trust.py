"""The trust store: a 0700 directory of public key files, names, safety checks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from airssys.lifecycle._keys import encode_public_key, key_id
from airssys.lifecycle._trust import TrustStore, TrustStoreError, default_config_dir


def new_public(tmp_path: Path, name: str, fmt: str = "raw") -> tuple[Path, str]:
    key = Ed25519PrivateKey.generate().public_key()
    path = tmp_path / name
    path.write_bytes(encode_public_key(key, fmt))
    return path, key_id(key)


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config" / "trusted-keys")


def test_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(tmp_path / "cfg"))
    assert TrustStore().directory == tmp_path / "cfg" / "trusted-keys"
    monkeypatch.delenv("AIRSSYS_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_dir() == tmp_path / "xdg" / "airssys"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_config_dir() == tmp_path / "home" / ".config" / "airssys"
    assert not (tmp_path / "home").exists()  # nothing created by looking
    assert default_config_dir(create=True).is_dir()


def test_an_absent_store_is_empty(store: TrustStore) -> None:
    assert store.list() == [] and store.keys() == []
    assert not store.directory.exists()


def test_add_list_find_remove(tmp_path: Path, store: TrustStore) -> None:
    alice, alice_id = new_public(tmp_path, "alice.pub")
    bob, bob_id = new_public(tmp_path, "bob.pem", fmt="pem")
    assert store.add(alice, name="alice") == alice_id
    assert store.add(bob) == bob_id
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert sorted(p.name for p in store.directory.iterdir()) == sorted(
        [f"{alice_id}.pub", f"{alice_id}.json", f"{bob_id}.pub", f"{bob_id}.json"]
    )
    # stored in wasmsign2's raw format, whatever format it came in
    assert (store.directory / f"{bob_id}.pub").read_bytes()[0] == 0x01
    listed = store.list()
    assert [(k.key_id, k.name) for k in listed] == [(alice_id, "alice"), (bob_id, None)]
    assert listed[0].source == str(alice.resolve()) and listed[0].added is not None
    public_keys = store.keys()
    assert [key_id(k) for k in public_keys] == [alice_id, bob_id]

    assert store.find("alice").key_id == alice_id
    assert store.find(bob_id).key_id == bob_id
    assert store.find(bob_id[:8].upper()).key_id == bob_id
    with pytest.raises(TrustStoreError, match="no trusted key has the id or name"):
        store.find(bob_id[:7])  # too short a prefix

    removed = store.remove("alice")
    assert removed.key_id == alice_id
    assert [k.key_id for k in store.list()] == [bob_id]
    assert not (store.directory / f"{alice_id}.json").exists()
    with pytest.raises(TrustStoreError, match="no trusted key has the id or name 'alice'"):
        store.remove("alice")


def test_adding_again_only_renames(tmp_path: Path, store: TrustStore) -> None:
    path, kid = new_public(tmp_path, "k.pub")
    store.add(path)
    assert store.add(path, name="release") == kid
    assert [(k.key_id, k.name) for k in store.list()] == [(kid, "release")]
    meta = json.loads((store.directory / f"{kid}.json").read_text())
    assert meta["name"] == "release" and meta["added"] is not None


def test_names_are_unique_and_well_formed(tmp_path: Path, store: TrustStore) -> None:
    a, _ = new_public(tmp_path, "a.pub")
    b, _ = new_public(tmp_path, "b.pub")
    store.add(a, name="ci")
    with pytest.raises(TrustStoreError, match="the name 'ci' is taken"):
        store.add(b, name="ci")
    for bad in ("", "has space", "-dash", "x" * 65, "ü"):
        with pytest.raises(ValueError, match="bad key name"):
            store.add(b, name=bad)
    assert len(store.list()) == 1


def test_a_key_file_dropped_in_by_hand(tmp_path: Path, store: TrustStore) -> None:
    store.directory.mkdir(parents=True, mode=0o700)
    _path, kid = new_public(store.directory, "ops.pem", fmt="pem")
    (store.directory / "notes.txt").write_text("not a key")
    (store.directory / ".hidden").write_text("ignored")
    listed = store.list()
    assert [(k.key_id, k.name) for k in listed] == [(kid, "ops")]
    store.remove("ops")
    assert store.list() == []
    assert (store.directory / "notes.txt").exists()


def test_the_same_key_twice_is_listed_once(tmp_path: Path, store: TrustStore) -> None:
    path, kid = new_public(tmp_path, "k.pub")
    store.add(path)
    (store.directory / "copy.pub").write_bytes(path.read_bytes())
    assert [k.key_id for k in store.list()] == [kid]
    store.remove(kid)
    assert list(store.directory.iterdir()) == []


def test_a_store_others_can_write_is_refused(tmp_path: Path, store: TrustStore) -> None:
    path, _ = new_public(tmp_path, "k.pub")
    store.add(path)
    os.chmod(store.directory, 0o777)
    with pytest.raises(TrustStoreError, match="writable by other users"):
        store.list()
    with pytest.raises(TrustStoreError, match="chmod 700"):
        store.add(path)


def test_a_file_where_the_store_should_be(tmp_path: Path) -> None:
    (tmp_path / "trusted-keys").write_text("")
    with pytest.raises(TrustStoreError, match="not a directory"):
        TrustStore(tmp_path / "trusted-keys").list()


def test_adding_a_key_object(store: TrustStore) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    assert store.add(key) == key_id(key)
    assert key in store
    assert Ed25519PrivateKey.generate().public_key() not in store
    assert store.list()[0].source is None


def test_to_dict(tmp_path: Path, store: TrustStore) -> None:
    path, kid = new_public(tmp_path, "k.pub")
    store.add(path, name="k")
    data = store.list()[0].to_dict()
    assert data["key_id"] == kid and data["name"] == "k"
    assert data["public_key"] == path.read_bytes()[1:].hex()
    json.dumps(data)
