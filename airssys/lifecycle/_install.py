"""Installing a package into the store: from a folder, an archive, a URL or git.

Sources (:func:`install_package`):

* a **component folder** (a directory holding Component.toml and its built wasm),
  or its ``Component.toml``;
* a **.tar.gz** (``.tgz``, ``.tar``) of a component folder, on disk or at an
  ``http(s)://`` URL: the folder is the archive's top level, or its only top-level
  directory. A digest, ``--sha256 HEX`` or a ``#sha256=HEX`` fragment on the URL,
  is checked before the archive is opened. Extraction is safe: no absolute names,
  no ``..``, nothing written through a link, no device files, at most
  :data:`~airssys.lifecycle._package.MAX_PACKAGE_FILES` members and
  :data:`~airssys.lifecycle._package.MAX_PACKAGE_BYTES` bytes;
* a **git repository**: ``git+<url>`` (``git+file://``, ``git+https://``, ...) or a
  URL (or a local path) ending in ``.git``, at a ``ref`` (a branch, a tag or a
  commit; ``URL@REF`` or ``ref=``), optionally a ``subdir`` of it. A branch or tag
  is cloned with ``--depth 1``; a commit is fetched by id into an empty repository.

Before anything is written to the store the package is checked: the manifest
(errors name the file and the key), its version (semver), its wasm (inside the
folder, built: a Python component with only its source is refused with the
``airssys build`` to run), its ``files`` grants (a relative host directory must lie
inside the folder, and not be writable: an installed package is read-only), and
its signature: :func:`~airssys.lifecycle._signing.verify_component` against the
trust store, with the Component.toml bytes, the package's listing (every file: see
:mod:`~airssys.lifecycle._listing`) and a detached ``<wasm>.sig`` if there is one. A
:class:`~airssys.lifecycle._signing.SignatureError` refuses the install (a file
added, removed or changed since signing is named). A package signed by a trusted key
before whole-package signatures installs as ``unknown``, with a warning to re-sign.

A package holds every file of the folder except ``.git``, ``.hg``, ``.svn``,
``__pycache__``, ``*.pyc`` and ``.DS_Store``. A symlink to a file inside the folder
is stored as that file; any other link, and special files, are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Final
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from .._logging import get_logger
from .._progress import phase
from ..errors import ManifestError
from ._listing import listing
from ._package import (
    CHUNK,
    MANIFEST,
    MAX_PACKAGE_BYTES,
    MAX_PACKAGE_FILES,
    SEMVER_RULE,
    Installed,
    Package,
    StoreError,
    Tree,
    TreeEntry,
    check_relpath,
    hash_file,
    parse_version,
)

if TYPE_CHECKING:
    from ._keys import PrivateKey, PublicKey
    from ._signing import Verification
    from ._store import Store
    from ._trust import TrustStore

__all__ = (
    "Fetched",
    "InstallResult",
    "SignedFolder",
    "extract",
    "fetch",
    "folder_listing",
    "install_package",
    "prepare",
    "sign_folder",
    "verify",
)

_log = get_logger("airssys.lifecycle.install")

MAX_DOWNLOAD_BYTES: Final = 512 << 20
"""The largest archive an ``http(s)://`` install downloads (512 MiB)."""
HTTP_CONNECT_TIMEOUT: Final = 10.0
HTTP_READ_TIMEOUT: Final = 60.0
GIT_TIMEOUT: Final = 600.0
_EXCLUDED_DIRS: Final = frozenset({".git", ".hg", ".svn", "__pycache__"})
_EXCLUDED_FILES: Final = frozenset({".DS_Store"})
_ARCHIVE_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar")
_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")
_COMMIT: Final = re.compile(r"[0-9a-f]{7,40}")
_WASM_MAGIC: Final = b"\0asm"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A source made local: the component folder, and how to record where it came from."""

    folder: Path
    source: str


@dataclass(frozen=True, slots=True)
class InstallResult:
    installed: Installed
    added: bool
    """False when the same bytes were installed already (nothing was written)."""
    verification: Verification


def install_package(
    store: Store,
    source: str | PathLike[str],
    *,
    trust: TrustStore | Sequence[PublicKey] | None = None,
    ref: str | None = None,
    subdir: str | None = None,
    sha256: str | None = None,
) -> InstallResult:
    """Fetch ``source``, check it (see the module docstring), then store it. ``trust``
    None: the store's (by default the configured trust store)."""
    from ._signing import SignatureError

    with contextlib.ExitStack() as stack:
        with phase("fetch", str(source)):
            fetched = stack.enter_context(fetch(source, ref=ref, subdir=subdir, sha256=sha256))
        with phase("check", str(source)):
            package, wasm, manifest, detached = prepare(fetched.folder)
        try:
            with phase("verify", f"{package.name}@{package.version}"):
                verification = verify(
                    wasm,
                    trust if trust is not None else store.trust,
                    manifest=manifest,
                    detached=detached,
                    package=listing(package.tree),
                )
        except SignatureError as exc:
            raise SignatureError(
                f"refusing to install {package.name}@{package.version} "
                f"({package.tree.wasm} in {fetched.source}): {exc}"
            ) from exc
        if verification.legacy_signer is not None:
            _log.warning(
                "package signed before whole-package signatures: installed as unknown; "
                "re-sign it (airssys sign FOLDER)",
                package=f"{package.name}@{package.version}",
                key=verification.legacy_signer,
            )
        with phase("store", f"{package.name}@{package.version}"):
            installed, added = store.add(
                package,
                signer=verification.signer,
                trust=verification.trust.value,
                source=fetched.source,
            )
    return InstallResult(installed, added, verification)


def verify(
    wasm: bytes,
    trust: TrustStore | Sequence[PublicKey] | None,
    *,
    manifest: bytes,
    detached: bytes | None,
    package: bytes | None = None,
) -> Verification:
    """The signature check (``trust`` None: the configured trust store); ``package``:
    the listing of the package as found."""
    from ._signing import verify_component
    from ._trust import TrustStore

    return verify_component(
        wasm,
        TrustStore() if trust is None else trust,
        manifest=manifest,
        detached=detached,
        package=package,
    )


def folder_listing(folder: Path) -> tuple[Path, bytes, bytes]:
    """A component folder as its signature binds it: the wasm's path, the manifest's
    bytes and the package listing (StoreError or ManifestError when it is no
    package)."""
    package, _wasm, manifest, _detached = prepare(folder)
    return folder.resolve() / package.tree.wasm, manifest, listing(package.tree)


@dataclass(frozen=True, slots=True)
class SignedFolder:
    """What :func:`sign_folder` wrote."""

    wasm: Path
    signature: Path | None
    """The detached signature's file; None when it is embedded in the wasm."""
    listing: bytes
    """The package listing the signature binds (:mod:`._listing`)."""


def sign_folder(
    folder: Path, private_key: PrivateKey, *, detached: Path | None = None
) -> SignedFolder:
    """Sign a component folder as a whole: its wasm bound to its Component.toml and
    to the listing of every other file, then signed, in place. The signature is
    embedded in the wasm, or written to ``detached``, or to ``<wasm>.sig`` when the
    folder already ships one there (the file install reads)."""
    from ._signing import bind_package, sign_component

    package, wasm, manifest, _earlier = prepare(folder)
    bound = listing(package.tree)
    target = folder.resolve() / package.tree.wasm
    beside = target.with_name(target.name + ".sig")
    if detached is None and beside.is_file():
        detached = beside
    if detached is None:
        _replace(target, sign_component(wasm, private_key, manifest=manifest, package=bound))
    else:
        module = bind_package(wasm, manifest, bound)
        signature = sign_component(
            module, private_key, manifest=manifest, package=bound, detached=True
        )
        _replace(target, module)
        _replace(detached, signature)
    return SignedFolder(target, detached, bound)


def _replace(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` (atomically), keeping its mode (a new file: 0644)."""
    from .._dirs import write_atomic

    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    write_atomic(path, data, mode)


# --- a folder into a package -----------------------------------------------------------


def prepare(folder: Path) -> tuple[Package, bytes, bytes, bytes | None]:
    """Check a component folder and hash its files: the package, and the wasm,
    manifest and detached signature bytes the package holds (for the signature
    check). Raises ManifestError or StoreError naming what is wrong."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a directory")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        if any(folder.glob("*.py")):
            raise StoreError(
                f"{folder} holds Python source but no {MANIFEST}: a component folder needs "
                "one (with name, version, wasm and source), then `airssys build` it"
            )
        raise StoreError(f"{folder} is not a component folder: it has no {MANIFEST}")
    # every link checked (to a file inside the folder) before anything is read
    files, dirs = _walk(folder)
    manifest_bytes = _read(manifest_path, MAX_PACKAGE_BYTES)
    try:
        text = manifest_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{manifest_path}: the manifest is not UTF-8 text: {exc}") from exc
    from ..manifest import parse_manifest

    # parsed from the very bytes that are stored and checked against the signature
    manifest = parse_manifest(text, path=manifest_path)
    try:
        parse_version(manifest.version)
    except ValueError:
        raise ManifestError(
            f"{manifest_path}: component.version {manifest.version!r:.80} is not "
            f"{SEMVER_RULE}; the store orders and pins versions by it"
        ) from None
    wasm_rel = _inside(folder, manifest.wasm)
    if wasm_rel is None:
        raise ManifestError(
            f"{manifest_path}: component.wasm {str(manifest.wasm)!r} is outside the component "
            f"folder {folder}; a package holds its folder only: build the wasm inside it"
        )
    if not manifest.wasm.is_file():
        if manifest.source is not None:
            raise StoreError(
                f"{manifest.wasm} does not exist: {manifest.name} is a Python component that "
                f"is not built yet; run `airssys build {folder}` first, then install it"
            )
        raise StoreError(f"{manifest_path}: component.wasm {manifest.wasm} does not exist")
    wasm = _read(manifest.wasm, MAX_PACKAGE_BYTES)
    if not wasm.startswith(_WASM_MAGIC):
        raise StoreError(
            f"{manifest.wasm} is not a WebAssembly binary (a package ships compiled wasm, "
            "not .wat text); build or convert it first"
        )
    _check_files_grants(text, manifest_path, folder)
    sig_path = manifest.wasm.with_name(manifest.wasm.name + ".sig")
    detached = _read(sig_path, 1 << 20) if sig_path.is_file() else None
    if MANIFEST not in files or wasm_rel not in files:
        raise StoreError(
            f"{manifest.wasm} is in a directory a package leaves out "
            f"({', '.join(sorted(_EXCLUDED_DIRS))})"
        )
    entries: dict[str, TreeEntry] = {}
    contents: dict[str, bytes | Path] = {}
    total = 0
    for rel, (path, mode) in sorted(files.items()):
        if rel == MANIFEST:
            data: bytes | None = manifest_bytes
        elif rel == wasm_rel:
            data = wasm
        else:
            data = None
        if data is not None:
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
            contents[rel] = data
        else:
            try:
                digest, size = hash_file(path, limit=MAX_PACKAGE_BYTES - total)
            except OSError as exc:
                raise StoreError(f"cannot read {path}: {exc}") from exc
            contents[rel] = path
        total += size
        if total > MAX_PACKAGE_BYTES:
            raise StoreError(f"{folder} holds more than {MAX_PACKAGE_BYTES} bytes")
        entries[rel] = TreeEntry(digest, mode, size)
    tree = Tree(entries, tuple(sorted(dirs)), wasm_rel)
    package = Package(manifest.name, manifest.version, tree, contents)
    return package, wasm, manifest_bytes, detached


def _inside(folder: Path, path: Path) -> str | None:
    """``path`` relative to ``folder`` as a POSIX path, or None when it is outside."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return None


def _read(path: Path, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise StoreError(f"{path} is larger than {limit} bytes")
    return data


def _check_files_grants(text: str, manifest_path: Path, folder: Path) -> None:
    """A relative ``files`` host directory must lie inside the folder (it is installed
    with it) and be read-only (an installed package cannot be written)."""
    table = tomllib.loads(text).get("capabilities", {})
    grants = table.get("files", []) if isinstance(table, dict) else []
    for index, grant in enumerate(grants if isinstance(grants, list) else []):
        host = grant.get("host") if isinstance(grant, dict) else None
        if not isinstance(host, str) or os.path.isabs(host):
            continue  # an absolute host directory is the operator's, not the package's
        where = f"{manifest_path}: capabilities.files[{index}].host {host!r:.80}"
        resolved = Path(os.path.normpath(folder / host))
        if _inside(folder, resolved) is None and resolved != folder:
            raise ManifestError(
                f"{where} is outside the component folder; a package holds its folder only "
                "(use an absolute host path for a directory of the machine)"
            )
        if grant.get("writable") is True:
            raise ManifestError(
                f"{where} is writable, but an installed package is read-only; mount an "
                "absolute host path for what the component writes"
            )


def _walk(folder: Path) -> tuple[dict[str, tuple[Path, int]], set[str]]:
    """Every file to package (relative path -> (path to read, mode)) and directory."""
    files: dict[str, tuple[Path, int]] = {}
    dirs: set[str] = set()
    real_root = os.path.realpath(folder)

    def unreadable(exc: OSError) -> None:
        raise StoreError(f"cannot read {exc.filename or folder}: {exc.strerror or exc}")

    for top, dirnames, filenames in os.walk(folder, onerror=unreadable):
        rel_top = Path(top).relative_to(folder).as_posix()
        keep = []
        for name in sorted(dirnames):
            path = Path(top, name)
            if name in _EXCLUDED_DIRS:
                continue
            if path.is_symlink():
                raise StoreError(
                    f"{path} is a link to a directory; a package holds plain directories only"
                )
            keep.append(name)
            dirs.add(_rel(rel_top, name, path))
        dirnames[:] = keep
        for name in sorted(filenames):
            if name in _EXCLUDED_FILES or name.endswith(".pyc"):
                continue
            path = Path(top, name)
            rel = _rel(rel_top, name, path)
            target = path
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    real = os.path.realpath(path)
                    if os.path.commonpath([real_root, real]) != real_root:
                        raise StoreError(f"{path} links outside the component folder")
                    target = Path(real)
                    st = os.stat(real)
            except OSError as exc:
                raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"{path} is not a regular file (a package holds files only)")
            files[rel] = (target, 0o755 if st.st_mode & stat.S_IXUSR else 0o644)
            if len(files) + len(dirs) > MAX_PACKAGE_FILES:
                raise StoreError(
                    f"{folder} holds more than {MAX_PACKAGE_FILES} files and directories"
                )
    return files, dirs


def _rel(rel_top: str, name: str, path: Path) -> str:
    rel = name if rel_top == "." else f"{rel_top}/{name}"
    try:
        rel.encode("utf-8")
        return check_relpath(rel)
    except (UnicodeEncodeError, ValueError):
        raise StoreError(
            f"{path}: a package's file names must be UTF-8 text without control characters "
            "or backslashes"
        ) from None


# --- sources ------------------------------------------------------------------------------


@contextmanager
def fetch(
    source: str | PathLike[str],
    *,
    ref: str | None = None,
    subdir: str | None = None,
    sha256: str | None = None,
) -> Iterator[Fetched]:
    """``source`` as a local component folder (temporary for a download, an archive or
    a clone: removed when the block ends)."""
    if sha256 is not None:
        if not _SHA256.fullmatch(sha256):
            raise StoreError(f"--sha256 {sha256!r:.80} is not a sha256 (64 hex digits)")
        sha256 = sha256.lower()
    if subdir is not None:
        subdir = _check_subdir(subdir)
    if not isinstance(source, str):
        with _local(Path(source), ref=ref, subdir=subdir, sha256=sha256) as fetched:
            yield fetched
        return
    text = source.strip()
    if not text:
        raise StoreError("no source given: pass a component folder, a .tar.gz, a URL or a git URL")
    git_url = _git_url(text)
    if git_url is not None:
        if sha256 is not None:
            raise StoreError("--sha256 applies to archives; a git source is pinned by --ref")
        url, url_ref = git_url
        if ref is not None and url_ref is not None and ref != url_ref:
            raise StoreError(f"two refs given: {url_ref!r} in the URL and {ref!r}")
        with _git(url, ref or url_ref, subdir) as fetched:
            yield fetched
        return
    parts = urlsplit(text)
    if parts.scheme in ("http", "https"):
        if ref is not None:
            raise StoreError("--ref applies to git sources only")
        with _download(parts, subdir=subdir, sha256=sha256) as fetched:
            yield fetched
        return
    if parts.scheme == "file":
        text = unquote(parts.path)
    elif not parts.scheme and "@" in Path(text).name:
        head, _, local_ref = text.rpartition("@")
        if head.endswith(".git") and Path(head).is_dir():  # a local repository@ref
            if ref is not None and ref != local_ref:
                raise StoreError(f"two refs given: {local_ref!r} in the source and {ref!r}")
            with _local(Path(head), ref=local_ref, subdir=subdir, sha256=sha256) as fetched:
                yield fetched
            return
    elif parts.scheme and len(parts.scheme) > 1:
        raise StoreError(
            f"unsupported source {_redact(text)!r}: use a folder, a .tar.gz, an http(s):// "
            "URL of a .tar.gz, or a git URL (git+https://..., git+file://..., or ending in .git)"
        )
    with _local(Path(text), ref=ref, subdir=subdir, sha256=sha256) as fetched:
        yield fetched


def _check_subdir(subdir: str) -> str:
    parts = PurePosixPath(subdir.replace(os.sep, "/")).parts
    if not parts or subdir.startswith("/") or any(p == ".." for p in parts):
        raise StoreError(
            f"--subdir {subdir!r:.80} must be a relative path inside the source, without '..'"
        )
    return "/".join(p for p in parts if p != ".") or "."


@contextmanager
def _local(
    path: Path, *, ref: str | None, subdir: str | None, sha256: str | None
) -> Iterator[Fetched]:
    if not os.path.lexists(path):
        raise StoreError(f"{path}: no such file or directory")
    if path.is_dir() and _is_repository(path):
        if sha256 is not None:
            raise StoreError("--sha256 applies to archives; a git source is pinned by --ref")
        with _git(path.resolve().as_uri(), ref, subdir) as fetched:
            yield fetched
        return
    if ref is not None:
        raise StoreError("--ref applies to git sources only")
    if path.is_dir():
        if sha256 is not None:
            raise StoreError("--sha256 applies to archives (.tar.gz) and URLs, not to folders")
        folder = path / subdir if subdir else path
        if not folder.is_dir():
            raise StoreError(f"{folder} is not a directory")
        yield Fetched(folder, str(folder.resolve()))
        return
    name = path.name.lower()
    if name.endswith(_ARCHIVE_SUFFIXES):
        actual, _size = hash_file(path, limit=MAX_DOWNLOAD_BYTES)
        _check_sha256(actual, sha256, str(path))
        with tempfile.TemporaryDirectory(prefix="airssys-install-") as tmp:
            root = Path(tmp) / "package"
            extract(path, root)
            yield Fetched(_package_root(root, subdir, str(path)), f"{path.resolve()}")
        return
    if sha256 is not None:
        raise StoreError("--sha256 applies to archives (.tar.gz) and URLs")
    if path.name == MANIFEST:
        folder = path.parent / subdir if subdir else path.parent
        yield Fetched(folder, str(folder.resolve()))
        return
    if path.suffix == ".py":
        from ..build import python_source_hint

        raise StoreError(python_source_hint(path, "build") + ", then install the folder")
    hint = f"; its folder is {path.parent}" if (path.parent / MANIFEST).is_file() else ""
    raise StoreError(
        f"{path} is not a source to install: pass a component folder (holding "
        f"{MANIFEST} and its built wasm) or a .tar.gz of one{hint}"
    )


def _is_repository(path: Path) -> bool:
    """A bare repository (or a directory named ``*.git``) that is no component folder."""
    if (path / MANIFEST).exists():
        return False
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    return bare or path.name.endswith(".git")


def _check_sha256(actual: str, expected: str | None, what: str) -> None:
    if expected is not None and actual != expected:
        raise StoreError(
            f"{what} has sha256 {actual}, not the expected {expected}: refusing it "
            "(changed, or the wrong file)"
        )


def _package_root(root: Path, subdir: str | None, what: str) -> Path:
    """The component folder in an extracted archive or a clone: ``subdir``, else the
    top level, else its only directory."""
    if subdir:
        folder = root / subdir
        real_root, real = os.path.realpath(root), os.path.realpath(folder)
        if os.path.commonpath([real_root, real]) != real_root:
            raise StoreError(f"{what}: {subdir!r} leads outside it (through a link)")
        if not folder.is_dir():
            raise StoreError(f"{what} has no directory {subdir!r}")
        return folder
    if (root / MANIFEST).exists():
        return root
    entries = [e for e in root.iterdir() if e.name not in _EXCLUDED_DIRS]
    only = entries[0] if len(entries) == 1 else None
    if only is not None and only.is_dir() and not only.is_symlink() and (only / MANIFEST).exists():
        return only
    raise StoreError(
        f"{what} holds no {MANIFEST} at its top level (nor in its only directory); "
        "pass the directory that holds it with --subdir"
    )


# --- archives -----------------------------------------------------------------------------


def extract(archive: Path, dest: Path) -> None:
    """Extract a tar archive (gzip or not) safely into ``dest`` (created): regular
    files, directories, and links whose target stays inside; nothing written through a
    link; bounded in members and bytes. StoreError naming the member otherwise."""
    dest.mkdir(mode=0o700)
    try:
        with tarfile.open(archive, "r|*") as tar:
            _extract_members(tar, archive, dest)
    except (tarfile.TarError, EOFError, OSError, UnicodeError) as exc:
        raise StoreError(f"{archive} is not a valid tar archive: {exc}") from exc


def _extract_members(tar: tarfile.TarFile, archive: Path, dest: Path) -> None:
    total = members = 0
    for member in tar:
        members += 1
        if members > MAX_PACKAGE_FILES:
            raise StoreError(f"{archive} holds more than {MAX_PACKAGE_FILES} members")
        rel = _member_path(archive, member.name)
        if rel is None:
            continue  # the top directory itself ("." or "./")
        target = dest.joinpath(*rel.parts)
        _check_parents(archive, dest, rel)
        where = f"{archive}: member {member.name!r:.120}"
        if member.isdir():
            if os.path.lexists(target):
                if not target.is_dir() or target.is_symlink():
                    raise StoreError(f"{where} replaces a file or link")
                continue
            os.mkdir(target, 0o755)
        elif member.isreg():
            total += member.size
            if total > MAX_PACKAGE_BYTES:
                raise StoreError(f"{archive} holds more than {MAX_PACKAGE_BYTES} bytes")
            stream = tar.extractfile(member)
            assert stream is not None
            _write_new(target, stream, member.size, member.mode, where)
        elif member.issym():
            link = member.linkname
            if os.path.isabs(link):
                raise StoreError(f"{where} is a link to an absolute path ({link!r:.80})")
            resolved = os.path.normpath(os.path.join(os.path.dirname(rel.as_posix()), link))
            if resolved == ".." or resolved.startswith("../"):
                raise StoreError(f"{where} links outside the archive ({link!r:.80})")
            _no_entry(target, where)
            os.symlink(link, target)
        elif member.islnk():
            linked = _member_path(archive, member.linkname)
            source = dest.joinpath(*linked.parts) if linked is not None else dest
            if (
                linked is None
                # nothing on the way may be a link
                or os.path.realpath(source) != os.path.join(os.path.realpath(dest), *linked.parts)
                or not os.path.isfile(source)
            ):
                raise StoreError(
                    f"{where} is a hard link to {member.linkname!r:.80}, which is not "
                    "a file extracted before it"
                )
            size = os.path.getsize(source)
            total += size
            if total > MAX_PACKAGE_BYTES:
                raise StoreError(f"{archive} holds more than {MAX_PACKAGE_BYTES} bytes")
            with open(source, "rb") as f:
                _write_new(target, f, size, os.stat(source).st_mode, where)
        else:
            raise StoreError(f"{where} is not a file, directory or link (a device or FIFO)")


def _member_path(archive: Path, name: str) -> PurePosixPath | None:
    if name.startswith("/"):
        raise StoreError(f"{archive}: member {name!r:.120} has an absolute path")
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        raise StoreError(f"{archive}: member {name!r:.120} holds '..'")
    if not parts:
        return None
    try:
        return PurePosixPath(check_relpath("/".join(parts)))
    except ValueError:
        raise StoreError(
            f"{archive}: member {name!r:.120} has a name with control characters or backslashes"
        ) from None


def _check_parents(archive: Path, dest: Path, rel: PurePosixPath) -> None:
    """No parent of ``rel`` under ``dest`` may be a link (nothing is written through one)."""
    current = dest
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise StoreError(f"{archive}: member {rel.as_posix()!r:.120} is under a link")
        if not current.exists():
            os.mkdir(current, 0o755)
        elif not current.is_dir():
            raise StoreError(f"{archive}: member {rel.as_posix()!r:.120} is under a file")


def _no_entry(target: Path, where: str) -> None:
    if os.path.lexists(target):
        raise StoreError(f"{where} appears twice")


def _write_new(target: Path, stream: IO[bytes], size: int, mode: int, where: str) -> None:
    _no_entry(target, where)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while written < size:
            chunk = stream.read(min(CHUNK, size - written))
            if not chunk:
                raise StoreError(f"{where} is truncated")
            out.write(chunk)
            written += len(chunk)
        os.fchmod(out.fileno(), 0o755 if mode & stat.S_IXUSR else 0o644)


# --- http(s) ------------------------------------------------------------------------------


def _redact(url: str) -> str:
    """The URL without a password (or token) in it."""
    parts = urlsplit(url)
    if parts.password is None and (parts.username is None or parts.scheme in ("ssh",)):
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


@contextmanager
def _download(parts: SplitResult, *, subdir: str | None, sha256: str | None) -> Iterator[Fetched]:
    fragment = parts.fragment
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "sha256" or not _SHA256.fullmatch(value):
            raise StoreError(
                f"unknown URL fragment #{fragment:.80}; accepted: #sha256=<64 hex digits>"
            )
        if sha256 is not None and sha256 != value.lower():
            raise StoreError(f"two digests given: {value} in the URL and {sha256}")
        sha256 = value.lower()
    url = urlunsplit(parts._replace(fragment=""))
    shown = _redact(url)
    with tempfile.TemporaryDirectory(prefix="airssys-install-") as tmp:
        name = PurePosixPath(parts.path).name.lower()
        archive = Path(tmp) / ("download.tar" if name.endswith(".tar") else "download.tar.gz")
        actual = _get(url, shown, archive)
        _check_sha256(actual, sha256, f"the download from {shown}")
        root = Path(tmp) / "package"
        extract(archive, root)
        yield Fetched(_package_root(root, subdir, shown), f"{shown}#sha256={actual}")


def _get(url: str, shown: str, dest: Path) -> str:
    """Download ``url`` into ``dest`` (at most MAX_DOWNLOAD_BYTES); its sha256."""
    import urllib3

    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=HTTP_CONNECT_TIMEOUT, read=HTTP_READ_TIMEOUT),
        retries=urllib3.Retry(total=2, redirect=5, raise_on_redirect=True),
    )
    digest = hashlib.sha256()
    try:
        response = http.request("GET", url, preload_content=False, decode_content=False)
        try:
            if response.status != 200:
                raise StoreError(f"{shown} answered HTTP {response.status} {response.reason}")
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_DOWNLOAD_BYTES:
                raise StoreError(f"{shown} is {length} bytes, over {MAX_DOWNLOAD_BYTES}")
            size = 0
            with open(dest, "xb") as out:
                for chunk in response.stream(CHUNK):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise StoreError(f"{shown} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise StoreError(f"cannot download {shown}: {exc}") from exc
    finally:
        http.clear()
    return digest.hexdigest()


# --- git ----------------------------------------------------------------------------------


def _git_url(text: str) -> tuple[str, str | None] | None:
    """(url, ref) when ``text`` names a git repository, else None."""
    explicit = text.startswith("git+")
    body = text[4:] if explicit else text
    parts = urlsplit(body)
    path, ref = parts.path, None
    if "@" in path:
        path, _, ref = path.rpartition("@")
    is_git = explicit or (
        parts.scheme in ("http", "https", "ssh", "git", "file") and path.endswith(".git")
    )
    if not is_git:
        return None
    if ref == "":
        raise StoreError(f"{_redact(text)!r}: nothing after '@' (expected URL@REF)")
    if parts.fragment or parts.query:
        raise StoreError(f"{_redact(text)!r}: a git URL takes no ?query or #fragment")
    if not parts.scheme:
        raise StoreError(f"{_redact(text)!r}: expected git+<scheme>://... (e.g. git+https://)")
    return urlunsplit(parts._replace(path=path)), ref


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ALLOW_PROTOCOL="file:git:http:https:ssh",
        GIT_ASKPASS="",
        LC_ALL="C",
    )
    return env


def _run_git(args: list[str], *, cwd: Path | None = None) -> str:
    command = ["git", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false", *args]
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=_git_env(),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise StoreError("git is not installed (it is needed to install from a git URL)") from None
    except subprocess.TimeoutExpired:
        raise StoreError(f"git {args[0]} took longer than {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise StoreError(f"git {args[0]} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout.strip()


@contextmanager
def _git(url: str, ref: str | None, subdir: str | None) -> Iterator[Fetched]:
    shown = _redact(url)
    if url.startswith("-") or (ref is not None and (ref.startswith("-") or not ref.strip())):
        raise StoreError(f"bad git URL or ref: {shown!r:.80} {ref!r:.80}")
    with tempfile.TemporaryDirectory(prefix="airssys-install-") as tmp:
        repo = Path(tmp) / "repo"
        if ref is not None and _COMMIT.fullmatch(ref):
            try:
                _checkout_commit(url, ref, repo)
            except StoreError:
                shutil.rmtree(repo, ignore_errors=True)
                _run_git(["clone", "--depth", "1", "--branch", ref, "--", url, str(repo)])
        elif ref is not None:
            _run_git(["clone", "--depth", "1", "--branch", ref, "--", url, str(repo)])
        else:
            _run_git(["clone", "--depth", "1", "--", url, str(repo)])
        commit = _run_git(["rev-parse", "HEAD"], cwd=repo)
        folder = _package_root(repo, subdir, f"{shown}@{ref or 'HEAD'}")
        where = f"git+{shown}" if not shown.startswith("git+") else shown
        recorded = f"{where}@{ref or 'HEAD'}#commit={commit}"
        if subdir:
            recorded += f"&subdir={subdir}"
        yield Fetched(folder, recorded)


def _checkout_commit(url: str, commit: str, repo: Path) -> None:
    """An empty repository, then the commit fetched by id (a full fetch for a short id)."""
    _run_git(["init", "-q", str(repo)])
    _run_git(["remote", "add", "origin", url], cwd=repo)
    if len(commit) == 40:
        try:
            _run_git(["fetch", "-q", "--depth", "1", "origin", commit], cwd=repo)
            _run_git(["checkout", "-q", "--detach", "FETCH_HEAD"], cwd=repo)
            return
        except StoreError:
            pass  # the server does not serve commits by id: fetch everything
    _run_git(["fetch", "-q", "--tags", "origin"], cwd=repo)
    _run_git(["checkout", "-q", "--detach", commit], cwd=repo)
