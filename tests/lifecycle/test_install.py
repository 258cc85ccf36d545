"""Installing from folders, archives, HTTP and git; the checks made before anything is
written (manifest, wasm, files grants, signatures); the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from airssys.errors import ManifestError
from airssys.lifecycle import PackageNotFound, Store, StoreError, VersionConflict, _install
from airssys.lifecycle._install import install_package, sign_folder
from airssys.lifecycle._signing import SignatureError, sign_component
from airssys.lifecycle._trust import TrustStore
from tests.lifecycle.conftest import Repo, Served, make_archive, tiny_wasm, write_component

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _nothing_written(store: Store) -> None:
    assert store.list() == []
    blobs = store.root / "blobs" / "sha256"
    assert not blobs.exists() or os.listdir(blobs) == []


# --- folders ---------------------------------------------------------------------------------


def test_install_a_copy_of_components_echo(store: Store, echo_copy: Path) -> None:
    installed = store.install(echo_copy)
    wasm = (echo_copy / "echo.wasm").read_bytes()
    assert (installed.name, installed.version) == ("echo", "0.1.0")
    assert installed.wasm_digest == hashlib.sha256(wasm).hexdigest()
    assert installed.source == str(echo_copy.resolve())
    assert (installed.trust, installed.signer) == ("unknown", None)
    checkout = store.path(installed)
    assert (checkout / "echo.wasm").read_bytes() == wasm
    assert sorted(os.listdir(checkout)) == ["Component.toml", "app.py", "echo.wasm"]


def test_the_manifest_path_installs_its_folder(store: Store, component: Path) -> None:
    assert store.install(component / "Component.toml").name == "tiny"


def test_an_unbuilt_python_component_is_refused(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "py"
    folder.mkdir()
    (folder / "app.py").write_text("def handle(sender, payload): return payload\n")
    with pytest.raises(StoreError, match="no Component.toml.*airssys build"):
        store.install(folder)
    (folder / "Component.toml").write_text(
        '[component]\nname = "py"\nversion = "0.1.0"\nwasm = "py.wasm"\nsource = "app.py"\n'
    )
    with pytest.raises(StoreError, match=f"not built yet; run `airssys build {folder}` first"):
        store.install(folder)
    with pytest.raises(StoreError, match="Python source"):
        store.install(folder / "app.py")
    _nothing_written(store)


def test_manifest_errors_name_the_file_and_key(store: Store, tmp_path: Path) -> None:
    folder = write_component(tmp_path / "c", version="1.0")
    with pytest.raises(ManifestError, match=r"Component\.toml: component\.version '1\.0'"):
        store.install(folder)
    write_component(folder, extra="colour = 1\n")
    with pytest.raises(ManifestError, match="unknown key component.colour"):
        store.install(folder)
    _nothing_written(store)


def test_the_wasm_must_be_a_binary_inside_the_folder(store: Store, tmp_path: Path) -> None:
    (tmp_path / "outside.wasm").write_bytes(tiny_wasm())
    folder = write_component(tmp_path / "c")
    (folder / "Component.toml").write_text(
        '[component]\nname = "c"\nversion = "0.1.0"\nwasm = "../outside.wasm"\n'
    )
    with pytest.raises(ManifestError, match="outside the component folder"):
        store.install(folder)
    folder = write_component(tmp_path / "wat", wasm=b"(component)")
    with pytest.raises(StoreError, match="not a WebAssembly binary"):
        store.install(folder)
    _nothing_written(store)


def test_files_grants_must_stay_inside_and_read_only(store: Store, tmp_path: Path) -> None:
    outside = 'files = [{ host = "../elsewhere", guest = "/elsewhere" }]'
    folder = write_component(tmp_path / "a", extra=f"[capabilities]\n{outside}\n")
    with pytest.raises(ManifestError, match=r"capabilities\.files\[0\]\.host.*outside"):
        store.install(folder)
    writable = 'files = [{ host = "./data", guest = "/data", writable = true }]'
    folder = write_component(
        tmp_path / "b", extra=f"[capabilities]\n{writable}\n", files={"data/x": b"x"}
    )
    with pytest.raises(ManifestError, match="writable, but an installed package is read-only"):
        store.install(folder)
    _nothing_written(store)
    inside = 'files = [{ host = "./data", guest = "/data" }]'
    folder = write_component(
        tmp_path / "c", extra=f"[capabilities]\n{inside}\n", files={"data/x": b"x"}
    )
    checkout = store.path(store.install(folder))
    assert (checkout / "data" / "x").read_bytes() == b"x"


def test_links_and_vcs_folders(store: Store, tmp_path: Path) -> None:
    folder = write_component(tmp_path / "c", files={"real.txt": b"real", ".git/config": b"x"})
    (folder / "alias.txt").symlink_to("real.txt")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "m.pyc").write_bytes(b"\0")
    checkout = store.path(store.install(folder))
    assert sorted(os.listdir(checkout)) == [
        "Component.toml",
        "alias.txt",
        "real.txt",
        "tiny.wasm",
    ]
    assert (checkout / "alias.txt").read_bytes() == b"real"
    assert not (checkout / "alias.txt").is_symlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the package")
    evil = write_component(tmp_path / "evil", name="evil")
    (evil / "leak.txt").symlink_to(secret)
    with pytest.raises(StoreError, match="links outside the component folder"):
        store.install(evil)
    (evil / "leak.txt").unlink()
    (evil / "dangling.txt").symlink_to("missing.txt")
    with pytest.raises(StoreError, match="cannot read .*dangling.txt"):
        store.install(evil)


# --- archives ------------------------------------------------------------------------------


@pytest.mark.parametrize("top", [None, "tiny-0.1.0"])
def test_install_a_tar_gz(store: Store, component: Path, tmp_path: Path, top: str | None) -> None:
    archive = make_archive(component, tmp_path / "tiny.tar.gz", top=top)
    installed = store.install(archive)
    assert installed.spec == "tiny@0.1.0"
    assert installed.source == str(archive)
    # the same bytes from a folder: the same package, so a no-op
    assert store.install(component) == installed


def test_an_archive_digest_is_checked(store: Store, component: Path, tmp_path: Path) -> None:
    archive = make_archive(component, tmp_path / "tiny.tgz")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match=f"has sha256 {digest}, not the expected 0{{64}}"):
        store.install(archive, sha256="0" * 64)
    _nothing_written(store)
    assert store.install(archive, sha256=digest.upper()).name == "tiny"


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _manifest_members() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    toml = b'[component]\nname = "tiny"\nversion = "0.1.0"\nwasm = "tiny.wasm"\n'
    return [(_member("Component.toml"), toml), (_member("tiny.wasm"), tiny_wasm())]


@pytest.mark.parametrize(
    ("member", "error"),
    [
        ((_member("../evil.txt"), b"x"), "holds '..'"),
        ((_member("/tmp/evil.txt"), b"x"), "absolute path"),
        ((_member("a/../../evil.txt"), b"x"), "holds '..'"),
        ((_member("up", tarfile.SYMTYPE, "../../evil"), None), "links outside the archive"),
        ((_member("abs", tarfile.SYMTYPE, "/etc/passwd"), None), "link to an absolute path"),
        ((_member("hard", tarfile.LNKTYPE, "missing.txt"), None), "not a file extracted"),
        ((_member("fifo", tarfile.FIFOTYPE), None), "device or FIFO"),
        ((_member("Component.toml"), b"again"), "appears twice"),
    ],
)
def test_unsafe_archives_are_refused(
    store: Store,
    tmp_path: Path,
    member: tuple[tarfile.TarInfo, bytes | None],
    error: str,
) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", *_manifest_members(), member)
    with pytest.raises(StoreError, match=error):
        store.install(archive)
    assert not (tmp_path / "evil.txt").exists()
    _nothing_written(store)


def test_writing_through_an_archived_link_is_refused(store: Store, tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "bad.tar.gz",
        *_manifest_members(),
        (_member("dir", tarfile.SYMTYPE, "."), None),
        (_member("dir/x.txt"), b"through the link"),
    )
    with pytest.raises(StoreError, match="under a link"):
        store.install(archive)


def test_archive_limits(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar(tmp_path / "big.tar.gz", *_manifest_members(), (_member("x.bin"), b"x" * 10))
    monkeypatch.setattr(_install, "MAX_PACKAGE_FILES", 2)
    with pytest.raises(StoreError, match="more than 2 members"):
        store.install(archive)
    monkeypatch.setattr(_install, "MAX_PACKAGE_FILES", 100)
    monkeypatch.setattr(_install, "MAX_PACKAGE_BYTES", len(tiny_wasm()) + 60)
    with pytest.raises(StoreError, match="more than"):
        store.install(archive)
    _nothing_written(store)


def test_archive_links_inside_are_kept(store: Store, tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "links.tar.gz",
        *_manifest_members(),
        (_member("data.txt"), b"data"),
        (_member("soft.txt", tarfile.SYMTYPE, "data.txt"), None),
        (_member("hard.txt", tarfile.LNKTYPE, "data.txt"), None),
    )
    checkout = store.path(store.install(archive))
    for name in ("data.txt", "soft.txt", "hard.txt"):
        assert (checkout / name).read_bytes() == b"data"


# --- http ----------------------------------------------------------------------------------


def test_install_from_a_url(
    store: Store, component: Path, http_root: Served, tmp_path: Path
) -> None:
    archive = make_archive(component, http_root.root / "tiny.tar.gz", top="tiny")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    installed = store.install(http_root("tiny.tar.gz"))
    assert installed.source == f"{http_root('tiny.tar.gz')}#sha256={digest}"
    store.uninstall("tiny")
    installed = store.install(f"{http_root('tiny.tar.gz')}#sha256={digest}")
    assert installed.name == "tiny"


def test_a_url_with_the_wrong_digest_is_refused(
    store: Store, component: Path, http_root: Served
) -> None:
    make_archive(component, http_root.root / "tiny.tar.gz")
    with pytest.raises(StoreError, match=f"not the expected {'a' * 64}"):
        store.install(f"{http_root('tiny.tar.gz')}#sha256={'a' * 64}")
    with pytest.raises(StoreError, match=f"not the expected {'b' * 64}"):
        store.install(http_root("tiny.tar.gz"), sha256="b" * 64)
    with pytest.raises(StoreError, match="HTTP 404"):
        store.install(http_root("missing.tar.gz"))
    with pytest.raises(StoreError, match="unknown URL fragment"):
        store.install(f"{http_root('tiny.tar.gz')}#md5=x")
    _nothing_written(store)


def test_tampered_bytes_from_a_url_are_refused(
    store: Store, tmp_path: Path, http_root: Served
) -> None:
    key = Ed25519PrivateKey.generate()
    trust = TrustStore(tmp_path / "trusted")
    trust.add(key.public_key())
    folder = write_component(tmp_path / "signed")
    manifest = (folder / "Component.toml").read_bytes()
    signed = sign_component(tiny_wasm(), key, manifest=manifest)
    tampered = bytearray(signed)
    tampered[-1] ^= 0xFF  # a flipped byte in the signed part
    (folder / "tiny.wasm").write_bytes(bytes(tampered))
    make_archive(folder, http_root.root / "tampered.tar.gz")
    with pytest.raises(SignatureError, match="refusing to install tiny@0.1.0.*tampered"):
        store.install(http_root("tampered.tar.gz"), trust=trust)
    _nothing_written(store)


# --- git -----------------------------------------------------------------------------------


def test_install_from_git_at_a_tag_a_branch_and_a_commit(store: Store, repo: Repo) -> None:
    write_component(repo.work, version="0.1.0")
    first = repo.commit("first", tag="v0.1.0")
    write_component(repo.work, version="0.2.0")
    second = repo.commit("second")

    tagged = store.install(f"{repo.url}@v0.1.0")
    assert tagged.version == "0.1.0"
    assert tagged.source == f"{repo.url}@v0.1.0#commit={first}"
    latest = store.install(repo.url, ref="main")
    assert (latest.version, latest.source) == ("0.2.0", f"{repo.url}@main#commit={second}")
    store.uninstall("tiny")
    by_commit = store.install(repo.url, ref=first)
    assert (by_commit.version, by_commit.source) == ("0.1.0", f"{repo.url}@{first}#commit={first}")
    assert store.install(str(repo.bare)).version == "0.2.0"  # a local path ending in .git
    assert sorted(os.listdir(store.path(by_commit))) == ["Component.toml", "tiny.wasm"]


def test_git_subdir_and_a_missing_ref(store: Store, repo: Repo) -> None:
    write_component(repo.work / "components" / "tiny", version="0.3.0")
    repo.commit("nested", tag="v0.3.0")
    installed = store.install(repo.url, ref="v0.3.0", subdir="components/tiny")
    assert installed.version == "0.3.0"
    assert installed.source.endswith("&subdir=components/tiny")
    with pytest.raises(StoreError, match="holds no Component.toml"):
        store.install(repo.url, ref="v0.3.0")
    with pytest.raises(StoreError, match="git clone failed"):
        store.install(repo.url, ref="v9.9.9")
    with pytest.raises(StoreError, match="bad git URL or ref"):
        store.install(repo.url, ref="--upload-pack=touch /tmp/x")


def test_refs_and_digests_apply_to_their_sources(store: Store, component: Path) -> None:
    with pytest.raises(StoreError, match="--ref applies to git sources only"):
        store.install(component, ref="main")
    with pytest.raises(StoreError, match="--sha256 applies to archives"):
        store.install(component, sha256="0" * 64)
    with pytest.raises(StoreError, match="unsupported source"):
        store.install("ftp://example.invalid/x.tar.gz")
    with pytest.raises(StoreError, match="no such file or directory"):
        store.install(component.parent / "missing")


# --- signatures ----------------------------------------------------------------------------


def test_signed_by_a_trusted_key(store: Store, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    trust = TrustStore(tmp_path / "trusted")
    kid = trust.add(key.public_key())
    folder = write_component(tmp_path / "c")
    sign_folder(folder, key)
    result = install_package(store, folder, trust=trust)
    assert (result.installed.trust, result.installed.signer) == ("trusted", kid)
    assert result.verification.signed
    # the same package against an empty trust store: signed, but unknown
    other = Store(tmp_path / "other")
    unknown = other.install(folder, trust=[])
    assert (unknown.trust, unknown.signer) == ("unknown", None)


def test_the_default_trust_store_is_the_configured_one(store: Store, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    kid = TrustStore().add(key.public_key())  # under AIRSSYS_CONFIG_DIR (conftest)
    folder = write_component(tmp_path / "c")
    sign_folder(folder, key)
    assert store.install(folder).signer == kid


def test_a_detached_signature_beside_the_wasm(store: Store, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    trust = TrustStore(tmp_path / "trusted")
    kid = trust.add(key.public_key())
    folder = write_component(tmp_path / "c")
    sign_folder(folder, key, detached=folder / "tiny.wasm.sig")
    installed = store.install(folder, trust=trust)
    assert installed.signer == kid
    (folder / "tiny.wasm.sig").write_bytes(b"\x01\x01\x01garbage")
    with pytest.raises(SignatureError):
        Store(tmp_path / "other").install(folder, trust=trust)


def test_a_manifest_changed_after_signing_is_refused(store: Store, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    trust = TrustStore(tmp_path / "trusted")
    trust.add(key.public_key())
    folder = write_component(tmp_path / "c")
    manifest = (folder / "Component.toml").read_bytes()
    (folder / "tiny.wasm").write_bytes(sign_component(tiny_wasm(), key, manifest=manifest))
    write_component(folder, extra='description = "edited after signing"\n', wasm=None)
    (folder / "tiny.wasm").write_bytes(sign_component(tiny_wasm(), key, manifest=manifest))
    with pytest.raises(SignatureError, match="manifest does not match"):
        store.install(folder, trust=trust)
    _nothing_written(store)


def test_a_refused_signature_is_checked_by_one_function(
    store: Store, component: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise SignatureError("a stand-in refusal")

    monkeypatch.setattr(_install, "verify", refuse)
    with pytest.raises(SignatureError, match="refusing to install tiny@0.1.0.*stand-in"):
        store.install(component)
    _nothing_written(store)


# --- the CLI ----------------------------------------------------------------------------------


@pytest.mark.timeout(300)  # CLI subprocesses: a fresh interpreter each
def test_cli_install_list_show_uninstall(cli: Cli, component: Path, tmp_path: Path) -> None:
    done = cli("install", component, "--json")
    assert done.returncode == 0, done.stderr
    installed = json.loads(done.stdout)
    assert (installed["name"], installed["version"], installed["added"]) == (
        "tiny",
        "0.1.0",
        True,
    )
    assert (tmp_path / "data" / "store" / "index.sqlite").is_file()  # AIRSSYS_DATA_DIR

    again = cli("install", component)
    assert again.returncode == 0, again.stderr
    assert "tiny@0.1.0 is already installed with these bytes" in again.stdout

    listed = cli("packages", "--json")
    assert [p["digest"] for p in json.loads(listed.stdout)] == [installed["digest"]]
    table = cli("packages")
    assert "tiny" in table.stdout and "0.1.0" in table.stdout

    shown = json.loads(cli("package", "tiny@0.1.0", "--json").stdout)
    assert shown["wasm"] == "tiny.wasm"
    assert {f["path"] for f in shown["files"]} == {"Component.toml", "tiny.wasm"}
    path = cli("package", "tiny", "--path").stdout.strip()
    assert Path(path, "Component.toml").is_file()

    removed = cli("uninstall", "tiny@0.1.0")
    assert removed.returncode == 0, removed.stderr
    assert "uninstalled tiny@0.1.0" in removed.stdout
    assert json.loads(cli("packages", "--json").stdout) == []


def test_cli_errors_are_one_line(cli: Cli, component: Path, tmp_path: Path) -> None:
    missing = cli("package", "nothing")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == ["error: no package named 'nothing' is installed"]
    assert cli("install", component).returncode == 0
    (component / "more.txt").write_text("changed")
    conflict = cli("install", component)
    assert conflict.returncode == 1
    lines = conflict.stderr.strip().splitlines()
    assert len(lines) == 1 and "versions are immutable" in lines[0]
    bad = cli("uninstall", "tiny@")
    assert bad.returncode == 1 and "NAME@VERSION" in bad.stderr


@pytest.mark.parametrize("command", ["install", "uninstall", "packages", "package"])
def test_cli_help(cli: Cli, command: str) -> None:
    done = cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "--json" in done.stdout


def test_store_errors_are_airssys_errors() -> None:
    from airssys.errors import AirssysError

    for error in (StoreError, PackageNotFound, VersionConflict, SignatureError):
        assert issubclass(error, AirssysError)
