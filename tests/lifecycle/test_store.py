"""The content-addressed store: layout, immutability, verification on read, checkouts,
versions, uninstall and gc, concurrency and crash safety."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airssys.lifecycle import (
    Installed,
    PackageInUse,
    PackageNotFound,
    Store,
    StoreError,
    VersionConflict,
    split_spec,
)
from airssys.lifecycle._package import parse_version
from airssys.manifest import load_manifest
from tests.lifecycle.conftest import tiny_wasm, write_component

# --- versions ------------------------------------------------------------------------------


def test_semver_precedence_follows_the_spec() -> None:
    ordered = [
        "0.9.0",
        "0.10.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.9.0",
        "1.10.0",
        "1.11.0",
        "2.0.0",
    ]
    shuffled = ordered[::2] + ordered[1::2]
    assert sorted(shuffled, key=lambda v: parse_version(v).precedence) == ordered
    assert parse_version("1.0.0+build.1").precedence == parse_version("1.0.0").precedence
    assert str(parse_version("1.2.3-rc.1+b.5")) == "1.2.3-rc.1+b.5"


@pytest.mark.parametrize(
    "text", ["1.0", "1", "v1.0.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", ""]
)
def test_semver_refuses_what_is_not_one(text: str) -> None:
    with pytest.raises(ValueError, match="semantic version"):
        parse_version(text)


def test_split_spec() -> None:
    assert split_spec("echo") == ("echo", None)
    assert split_spec("echo@1.0.0") == ("echo", "1.0.0")
    for bad in ("@1.0.0", "echo@", ""):
        with pytest.raises(ValueError):
            split_spec(bad)


# --- layout and the index ------------------------------------------------------------------


def test_layout_blobs_are_named_by_their_digest_and_read_only(
    store: Store, component: Path
) -> None:
    installed = store.install(component)
    blobs = store.root / "blobs" / "sha256"
    names = sorted(os.listdir(blobs))
    manifest = (component / "Component.toml").read_bytes()
    expected_files = {hashlib.sha256(d).hexdigest() for d in (manifest, tiny_wasm())}
    assert set(names) == expected_files | {installed.digest}
    for name in names:
        path = blobs / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert installed.wasm_digest == hashlib.sha256(tiny_wasm()).hexdigest()
    tree = json.loads((blobs / installed.digest).read_bytes())
    assert tree["format"] == "airssys-package/1"
    assert tree["wasm"] == "tiny.wasm"
    assert set(tree["files"]) == {"Component.toml", "tiny.wasm"}
    with sqlite3.connect(store.root / "index.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


def test_default_data_dir_is_airssys_data_dir(tmp_path: Path) -> None:
    assert Store().root == tmp_path / "data" / "store"  # conftest sets AIRSSYS_DATA_DIR


def test_reads_create_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "nowhere")
    assert store.list() == []
    with pytest.raises(PackageNotFound):
        store.get("tiny")
    assert not (tmp_path / "nowhere").exists()


def test_get_returns_the_highest_version(store: Store, tmp_path: Path) -> None:
    for version in ("0.9.0", "0.10.0", "0.2.0", "0.10.0-rc.1"):
        store.install(write_component(tmp_path / version, version=version))
    assert store.get("tiny").version == "0.10.0"
    assert [i.version for i in store.versions("tiny")] == [
        "0.2.0",
        "0.9.0",
        "0.10.0-rc.1",
        "0.10.0",
    ]
    assert store.get("tiny", "0.9.0").version == "0.9.0"
    with pytest.raises(PackageNotFound, match=r"tiny@1\.0\.0 is not installed.*0\.2\.0"):
        store.get("tiny", "1.0.0")
    with pytest.raises(PackageNotFound, match="no package named 'other'"):
        store.get("other")


# --- immutability ----------------------------------------------------------------------------


def test_same_bytes_again_is_a_no_op(store: Store, component: Path) -> None:
    first = store.install(component)
    again = store.install(component)
    assert again == first  # the same entry: same installed_at and source
    assert store.list() == [first]


def test_other_bytes_under_an_installed_version_are_refused(store: Store, component: Path) -> None:
    first = store.install(component)
    (component / "notes.txt").write_text("a new file changes the package")
    with pytest.raises(VersionConflict) as caught:
        store.install(component)
    message = str(caught.value)
    assert f"tiny@0.1.0 is already installed with digest sha256:{first.digest}" in message
    assert "versions are immutable: bump the version" in message
    assert store.list() == [first]


def test_build_metadata_does_not_make_another_version(store: Store, tmp_path: Path) -> None:
    store.install(write_component(tmp_path / "a", version="1.0.0+a"))
    with pytest.raises(VersionConflict, match=r"tiny@1\.0\.0\+a is already installed"):
        store.install(write_component(tmp_path / "b", version="1.0.0+b"))
    assert store.get("tiny", "1.0.0").version == "1.0.0+a"


# --- verification on read -----------------------------------------------------------------


def _corrupt(path: Path, data: bytes = b"not what was stored") -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def test_a_corrupt_blob_is_refused_by_name(store: Store, component: Path) -> None:
    installed = store.install(component)
    blob = store.blob_path(installed.wasm_digest)
    _corrupt(blob)
    with pytest.raises(StoreError, match=f"blob sha256:{installed.wasm_digest} is corrupt"):
        store.read_blob(installed.wasm_digest)
    with pytest.raises(StoreError, match=f"blob sha256:{installed.wasm_digest} is corrupt"):
        store.path(installed)
    assert not (store.root / "checkouts" / installed.digest).exists()


def test_a_corrupt_tree_is_refused(store: Store, component: Path) -> None:
    installed = store.install(component)
    _corrupt(store.blob_path(installed.digest), b"{}")
    with pytest.raises(StoreError, match=f"blob sha256:{installed.digest} is corrupt"):
        store.tree(installed)
    with pytest.raises(StoreError, match="corrupt"):
        store.gc()  # nothing removed on a tree it cannot read
    assert store.blob_path(installed.wasm_digest).exists()


def test_a_missing_blob_is_named(store: Store, component: Path) -> None:
    installed = store.install(component)
    store.blob_path(installed.wasm_digest).unlink()
    with pytest.raises(StoreError, match=f"blob sha256:{installed.wasm_digest} is missing"):
        store.path(installed)


def test_installing_again_repairs_a_corrupt_blob(store: Store, component: Path) -> None:
    installed = store.install(component)
    checkout = store.path(installed)
    _corrupt(store.blob_path(installed.wasm_digest))
    assert store.install(component) == installed  # the same entry, its blob rewritten
    assert store.read_blob(installed.wasm_digest) == tiny_wasm()
    assert store.path(installed) == checkout
    assert (checkout / "tiny.wasm").read_bytes() == tiny_wasm()


# --- checkouts ------------------------------------------------------------------------------


def test_checkout_is_a_read_only_component_folder(
    store: Store, tmp_path: Path, runtime: object
) -> None:
    folder = write_component(
        tmp_path / "src",
        files={"data/greeting.txt": b"hello", "bin/tool.sh": b"#!/bin/sh\n"},
    )
    os.chmod(folder / "bin" / "tool.sh", 0o755)
    (folder / "empty").mkdir()
    installed = store.install(folder)
    checkout = store.path(installed)
    assert checkout == store.root / "checkouts" / installed.digest
    assert (checkout / "data" / "greeting.txt").read_bytes() == b"hello"
    assert (checkout / "empty").is_dir()
    assert stat.S_IMODE(checkout.stat().st_mode) == 0o555
    assert stat.S_IMODE((checkout / "data").stat().st_mode) == 0o555
    assert stat.S_IMODE((checkout / "tiny.wasm").stat().st_mode) == 0o444
    assert stat.S_IMODE((checkout / "bin" / "tool.sh").stat().st_mode) == 0o555
    manifest = load_manifest(checkout)
    assert manifest.wasm == checkout / "tiny.wasm"
    assert manifest.wasm.read_bytes() == tiny_wasm()
    # a ComponentSource: loads and runs
    from airssys.actors._loading import load
    from airssys.runtime import Runtime

    assert isinstance(runtime, Runtime)
    loaded = load(runtime, checkout, None)
    assert loaded.component.sha256 == installed.wasm_digest
    assert store.path(installed) == checkout  # made once


def test_a_changed_checkout_is_remade(store: Store, component: Path) -> None:
    installed = store.install(component)
    checkout = store.path(installed)
    os.chmod(checkout, 0o755)
    (checkout / "planted.txt").write_text("not in the package")
    assert store.path(installed) == checkout
    assert sorted(os.listdir(checkout)) == ["Component.toml", "tiny.wasm"]
    assert stat.S_IMODE(checkout.stat().st_mode) == 0o555


# --- uninstall and gc -----------------------------------------------------------------------


def test_uninstall_refuses_what_is_running(store: Store, tmp_path: Path) -> None:
    for version in ("0.1.0", "0.2.0"):
        store.install(write_component(tmp_path / version, version=version))
    with pytest.raises(PackageInUse, match=r"tiny@0\.2\.0 is running"):
        store.uninstall("tiny", "0.2.0", running={"tiny@0.2.0"})
    with pytest.raises(PackageInUse):
        store.uninstall("tiny", running={"tiny"})
    removed = store.uninstall("tiny", "0.1.0", running={"tiny@0.2.0"})
    assert [r.spec for r in removed] == ["tiny@0.1.0"]
    removed = store.uninstall("tiny", running={"tiny"}, force=True)
    assert [r.spec for r in removed] == ["tiny@0.2.0"]
    assert store.list() == []
    with pytest.raises(PackageNotFound):
        store.uninstall("tiny")


def test_gc_removes_only_what_nothing_refers_to(store: Store, tmp_path: Path) -> None:
    one = store.install(write_component(tmp_path / "a", version="0.1.0"))
    two = store.install(write_component(tmp_path / "b", version="0.2.0"))
    assert one.wasm_digest == two.wasm_digest  # the wasm blob is shared
    store.path(one)
    assert store.gc().blobs == 0
    store.uninstall("tiny", "0.1.0")
    result = store.gc()
    assert (result.blobs, result.checkouts) == (2, 1)  # one's manifest and tree
    assert store.read_blob(two.wasm_digest) == tiny_wasm()
    assert store.path(two).is_dir()
    store.uninstall("tiny")
    store.gc()
    assert os.listdir(store.root / "blobs" / "sha256") == []
    assert os.listdir(store.root / "checkouts") == []


# --- concurrency and crashes -------------------------------------------------------------


_INSTALLER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from airssys.lifecycle import Store

    store = Store(sys.argv[1])
    for folder in sys.argv[2:]:
        store.install(Path(folder), trust=[])
    """
)


def test_concurrent_installs_from_two_processes(store: Store, tmp_path: Path) -> None:
    shared = write_component(tmp_path / "shared", name="shared", files={"x.bin": b"x" * 100_000})
    own = [
        write_component(tmp_path / f"own{i}", name=f"own{i}", files={"y.bin": bytes([i]) * 5000})
        for i in range(2)
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _INSTALLER, str(store.root.parent), str(shared), str(mine)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for mine in own
    ]
    errors = []
    try:
        for process in processes:
            _out, err = process.communicate(timeout=120)
            errors.append((process.returncode, err))
    finally:
        for process in processes:  # none left running, whatever happened
            process.kill()
            process.wait()
    assert [code for code, _ in errors] == [0, 0], errors
    assert [i.spec for i in store.list()] == ["own0@0.1.0", "own1@0.1.0", "shared@0.1.0"]
    for installed in store.list():
        assert load_manifest(store.path(installed)).name == installed.name
    assert os.listdir(store.root / "tmp") == []


_CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from airssys.lifecycle import _store

    def crash(self, installed):  # after every blob is written, before the index row
        os.kill(os.getpid(), signal.SIGKILL)

    _store.Store._commit = crash
    _store.Store(sys.argv[1]).install(Path(sys.argv[2]), trust=[])
    """
)


def test_a_crash_before_the_index_row_leaves_no_entry(store: Store, component: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(store.root.parent), str(component)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert store.list() == []
    with pytest.raises(PackageNotFound):
        store.get("tiny")
    orphans = os.listdir(store.root / "blobs" / "sha256")
    assert len(orphans) == 3  # the manifest, the wasm and the tree were written
    installed = store.install(component)  # the store is usable as it is
    assert store.path(installed).is_dir()
    assert store.gc().blobs == 0
    store.uninstall("tiny")
    assert store.gc().blobs == 3


def test_installed_round_trips_to_a_dict(store: Store, component: Path) -> None:
    installed = store.install(component)
    assert Installed(**installed.to_dict()) == installed
    assert installed.spec == "tiny@0.1.0"
    assert (installed.trust, installed.signer) == ("unknown", None)
