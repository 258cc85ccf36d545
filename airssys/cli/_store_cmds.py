"""``airssys install|uninstall|packages|package``: the package store from the command line.

``install SOURCE`` takes a component folder, a ``.tar.gz`` of one (a path or an
``http(s)://`` URL, ``--sha256`` or ``#sha256=`` to pin it), or a git repository
(``git+https://...``, ``git+file://...``, a URL ending in ``.git``; ``--ref`` or
``URL@REF``; ``--subdir``). The signature is checked against the trust store
(``airssys config trust``); a bad one refuses the install. ``uninstall
NAME[@VERSION]`` removes one version or all of them. ``packages`` lists what is
installed; ``package NAME[@VERSION]`` shows one (``--path``: its read-only
checkout, to pass to ``airssys run``). The store lives under ``--data-dir``
(default ``$AIRSSYS_DATA_DIR``, else the XDG data home). Results go to stdout
(``--json``: JSON); a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._output import out_console
from ._progress import reporting

if TYPE_CHECKING:
    from ..lifecycle import Installed, Store

__all__ = ("register",)

_out = out_console(soft_wrap=True)
_table_out = out_console()
_err = Console(stderr=True, soft_wrap=True)
_running: Callable[[], Collection[str]] | None = None

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="Where the store lives (default: $AIRSSYS_DATA_DIR or XDG data).",
    ),
]
Spec = Annotated[
    str,
    typer.Argument(
        metavar="NAME[@VERSION]", help="A package, e.g. echo or echo@0.1.0 (default: latest)."
    ),
]


def register(
    app: typer.Typer,
    *,
    epilog: str | None = None,
    running: Callable[[], Collection[str]] | None = None,
) -> None:
    """Add ``install``, ``uninstall``, ``packages`` and ``package`` to ``app``.

    ``running``: what runs now, as package names or ``name@version`` (e.g. asked of
    the node); ``uninstall`` refuses those without ``--force``. None: not checked.
    """
    global _running
    _running = running
    app.command("install", epilog=epilog)(install)
    app.command("uninstall", epilog=epilog)(uninstall)
    app.command("packages", epilog=epilog)(packages)
    app.command("package", epilog=epilog)(package)


def _store(data_dir: Path | None) -> Store:
    from ..lifecycle import Store

    return Store(data_dir)


def _print_json(value: Any) -> None:
    _out.print(json.dumps(value, ensure_ascii=False), markup=False, highlight=False)


def _say(text: str) -> None:
    _out.print(text, markup=False, highlight=False)


def _short(digest: str) -> str:
    return f"sha256:{digest[:12]}"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _trust_text(installed: Installed) -> str:
    if installed.revoked:
        return f"{installed.trust} (signer {installed.revoked} is no longer trusted)"
    if installed.signer:
        return f"{installed.trust}, signed by {installed.signer}"
    return installed.trust


def _warn_revoked(rows: list[Installed]) -> None:
    """A warning naming each key that signed a listed package and is no longer trusted."""
    for key in sorted({r.revoked for r in rows if r.revoked}):
        specs = ", ".join(r.spec for r in rows if r.revoked == key)
        _err.print(
            f"warning: the key {key} that signed {specs} is no longer in the trust store: "
            "unknown now",
            highlight=False,
            markup=False,
        )


# --- install ----------------------------------------------------------------------------


def install(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A component folder, a .tar.gz (path or http(s) URL), or a git URL.",
        ),
    ],
    ref: Annotated[
        str | None,
        typer.Option("--ref", metavar="REF", help="git: the branch, tag or commit."),
    ] = None,
    subdir: Annotated[
        str | None,
        typer.Option(
            "--subdir", metavar="DIR", help="The component folder inside the archive or repository."
        ),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", metavar="HEX", help="The archive's expected sha256."),
    ] = None,
    trust_dir: Annotated[
        Path | None,
        typer.Option(
            "--trust-dir",
            metavar="DIR",
            help="The trusted keys (default: the configured trust store).",
        ),
    ] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Install a component package (verified, content-addressed, immutable)."""
    from ..lifecycle import install_package

    trust = None
    if trust_dir is not None:
        from ..lifecycle import TrustStore

        trust = TrustStore(trust_dir)
    with reporting(json_out=as_json):  # fetch, check, verify, store
        result = install_package(
            _store(data_dir), source, trust=trust, ref=ref, subdir=subdir, sha256=sha256
        )
    installed, verification = result.installed, result.verification
    if verification.legacy_signer is not None:
        _err.print(
            f"warning: {installed.spec} is signed by {verification.legacy_signer} before "
            "whole-package signatures: it is unknown until re-signed (airssys sign FOLDER)",
            highlight=False,
            markup=False,
        )
    if as_json:
        _print_json(
            {
                **installed.to_dict(),
                "added": result.added,
                "signed": verification.signed,
                "reason": verification.reason,
            }
        )
        return
    if not result.added:
        _say(
            f"{installed.spec} is already installed with these bytes "
            f"({_short(installed.digest)}); nothing to do"
        )
        return
    _say(
        f"installed {installed.spec} ({_short(installed.digest)}; {verification.reason}; "
        f"trust {installed.trust}) from {installed.source}"
    )


# --- uninstall --------------------------------------------------------------------------


def uninstall(
    spec: Spec,
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even while a node runs it.")
    ] = False,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Remove a package version (every version without @VERSION) from the index.

    Its files stay in the store, unused, until the Python API's Store.gc() removes
    what no installed package refers to (docs/store.md).
    """
    from ..lifecycle import split_spec

    name, version = split_spec(spec)
    running = frozenset(_running()) if _running is not None else frozenset()
    removed = _store(data_dir).uninstall(name, version, running=running, force=force)
    if as_json:
        _print_json([r.to_dict() for r in removed])
        return
    for row in removed:
        _say(f"uninstalled {row.spec} ({_short(row.digest)})")


# --- packages / package -----------------------------------------------------------------


def packages(as_json: JsonOption = False, data_dir: DataDir = None) -> None:
    """The installed packages: name, version, trust (decided now), digest, when, from where."""
    rows = _store(data_dir).list()
    _warn_revoked(rows)
    if as_json:
        _print_json([r.to_dict() for r in rows])
        return
    if not rows:
        _err.print("no packages installed", highlight=False)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "VERSION", "TRUST", "DIGEST", "INSTALLED", "SOURCE"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.name,
            row.version,
            _trust_text(row),
            _short(row.digest),
            _when(row.installed_at),
            row.source,
        )
    _table_out.print(table)


def package(
    spec: Spec,
    path: Annotated[
        bool,
        typer.Option(
            "--path", help="Print only its read-only checkout's path (made and verified)."
        ),
    ] = False,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """One installed package: digests, signer, trust, source, files, other versions."""
    from ..lifecycle import split_spec

    name, version = split_spec(spec)
    store = _store(data_dir)
    installed = store.get(name, version)
    _warn_revoked([installed])
    if path:
        checkout = store.path(installed)
        if as_json:
            _print_json({"path": str(checkout)})
        else:
            _say(str(checkout))
        return
    tree = store.tree(installed)
    versions = [v.version for v in store.versions(name)]
    files = [
        {"path": rel, "sha256": entry.sha256, "size": entry.size, "mode": f"{entry.mode:o}"}
        for rel, entry in sorted(tree.files.items())
    ]
    if as_json:
        _print_json(
            {**installed.to_dict(), "wasm": tree.wasm, "versions": versions, "files": files}
        )
        return
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in (
        ("package", installed.spec),
        ("digest", f"sha256:{installed.digest}"),
        ("wasm", f"{tree.wasm} (sha256:{installed.wasm_digest})"),
        ("trust", _trust_text(installed) if installed.revoked else installed.trust),
        ("signer", installed.signer or "-"),
        ("source", installed.source),
        ("installed", _when(installed.installed_at)),
        ("versions", ", ".join(versions)),
    ):
        table.add_row(key, value)
    _table_out.print(table)
    listing = Table(box=None, pad_edge=False)
    for column in ("FILE", "SIZE", "MODE", "SHA256"):
        listing.add_column(column, overflow="fold")
    for item in files:
        listing.add_row(
            str(item["path"]), str(item["size"]), str(item["mode"]), _short(str(item["sha256"]))
        )
    _table_out.print(listing)
