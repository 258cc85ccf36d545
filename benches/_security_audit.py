"""Two security figures: what a kill costs the audit, and what verifying a package costs.

* ``audit.lost_on_kill``: a node-like process (``open_system(audit_log=...)``) runs
  host.wat with a messaging grant that does not cover where it sends, and is asked
  1,500 times: 1,500 ``send`` denials through the real hook (100 recorded one by one,
  the rest summarised). 1.5 s after the last denial the process gets SIGKILL. The
  figure is the denials it counted minus those the file accounts for (records plus
  summary counts). Aim: 0.
* ``verify_ms``: install-time verification of a 20 MB package (a 4 MB component and
  16 data files of 1 MB, signed whole): reading and hashing every file, the package
  listing, and the signature check against the trust store, as ``install`` does
  before it writes anything. The median of 5 runs, files in the page cache.

  python -m benches._security_audit [--json]

The functions return the figures for ``benches/bench_security.py`` to report.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benches._common import FIXTURES, emit_json, machine, parse_args

DENIALS = 1_500
KILL_AFTER = 1.5
PACKAGE_MB = 20
WASM_MB = 4

_CHILD = """
import asyncio, sys
from airssys import codec, configure_logging, open_system
from airssys.errors import HandlerError

async def main(path, fixture, n):
    configure_logging("critical")
    async with open_system(audit_log=path) as system:
        ref = await system.spawn_component(
            fixture, name="host", capabilities={"messaging": {"send": ["/nowhere"]}}
        )
        message = codec.encode(b"x", "raw")
        for _ in range(n):
            try:
                await ref.ask(message, sender="/sink")
            except HandlerError:
                pass  # the send was denied: the handler answers err
        print(system.audit.denials(ref.address), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def _accounted(path: Path) -> int:
    """Denials the audit file accounts for: records plus summary counts."""
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill accounts for nothing
        if record.get("decision") == "deny":
            total += int(record.get("count", 1))
    return total


def lost_on_kill(denials: int = DENIALS, kill_after: float = KILL_AFTER) -> int:
    """Denials caused minus denials in the audit file after a SIGKILL ``kill_after``
    seconds after the last one."""
    with tempfile.TemporaryDirectory(prefix="airssys-bench-audit-") as tmp:
        path = Path(tmp) / "audit.jsonl"
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(FIXTURES / "host.wat"), str(denials)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            last_denial = time.monotonic()
            if not line.strip():
                raise RuntimeError(f"the audit child died before reporting (exit {child.wait()})")
            caused = int(line)
            time.sleep(max(0.0, last_denial + kill_after - time.monotonic()))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
        return caused - _accounted(path)


def _package(root: Path) -> tuple[Path, Any]:
    """A 20 MB component folder signed whole, and the trusted key list."""
    import wasmtime
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from airssys.lifecycle import sign_folder
    from airssys.lifecycle._wasm_sections import custom_section

    folder = root / "big"
    (folder / "data").mkdir(parents=True)
    wasm = bytes(wasmtime.wat2wasm((FIXTURES / "echo.wat").read_text()))
    padding = WASM_MB * (1 << 20) - len(wasm) - 64
    (folder / "big.wasm").write_bytes(wasm + custom_section("padding", os.urandom(padding)))
    (folder / "Component.toml").write_text(
        '[component]\nname = "big"\nversion = "1.0.0"\nwasm = "big.wasm"\n'
    )
    for i in range(PACKAGE_MB - WASM_MB):
        (folder / "data" / f"part-{i:02d}.bin").write_bytes(os.urandom(1 << 20))
    key = Ed25519PrivateKey.generate()
    sign_folder(folder, key)
    return folder, [key.public_key()]


def verify_ms(runs: int = 5) -> float:
    """Milliseconds to verify a 20 MB package as install does (median of ``runs``)."""
    from airssys.lifecycle import package_listing
    from airssys.lifecycle._install import prepare, verify

    with tempfile.TemporaryDirectory(prefix="airssys-bench-verify-") as tmp:
        folder, trust = _package(Path(tmp))
        took = []
        for _ in range(runs + 1):  # the first run warms the page cache
            started = time.perf_counter()
            package, wasm, manifest, detached = prepare(folder)
            result = verify(
                wasm,
                trust,
                manifest=manifest,
                detached=detached,
                package=package_listing(package.tree),
            )
            took.append((time.perf_counter() - started) * 1e3)
            if not result.trusted:
                raise RuntimeError(f"the bench package did not verify: {result.reason}")
        return statistics.median(took[1:])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    results: dict[str, Any] = {
        "machine": machine(),
        "audit": {"lost_on_kill": lost_on_kill(), "denials": DENIALS, "kill_after_s": KILL_AFTER},
        "verify_ms": verify_ms(),
        "verify_package_mb": PACKAGE_MB,
    }
    if args.json:
        emit_json(results)
        return
    print(
        f"audit: {results['audit']['lost_on_kill']} of {DENIALS} denials lost to a SIGKILL "
        f"{KILL_AFTER:g} s after the last one (aim: 0)"
    )
    print(f"install-time verification of a {PACKAGE_MB} MB package: {results['verify_ms']:.1f} ms")


if __name__ == "__main__":
    main()
