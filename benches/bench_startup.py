"""Time to first reply from a Python component: cold caches against warm, per process.

Each measurement is a fresh Python process that opens a system, spawns the
components/echo Python component from its Component.toml and waits for the first
reply. Side by side, in one run:
  * cold + build: empty build cache and empty compile cache (componentize-py runs,
    then wasmtime compiles the 18 MB component);
  * cold: the component is built, the compile cache is empty (wasmtime compiles);
  * warm: a second process on the same caches (the serialized artifact is loaded).

    python benches/bench_startup.py [--quick] [--json]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benches._common import ROOT, emit_json, fmt_time, machine, parse_args, table

CHILD = """
import asyncio, json, sys, time
t0 = time.perf_counter()
from airssys import codec, open_system
from airssys.build import build_component

async def main():
    build_component(sys.argv[1], cache_dir=sys.argv[2])
    async with open_system(cache_dir=sys.argv[2]) as system:
        await system.spawn_component(sys.argv[1], name="echo")
        reply = await system.ask("/echo", codec.encode({"hi": 1}), timeout=60)
        assert codec.decode(reply) == {"hi": 1}
        return time.perf_counter() - t0

print(json.dumps({"first_reply_s": asyncio.run(main())}))
"""


def first_reply(component: Path, cache: Path) -> float:
    """Seconds from process start (after interpreter boot) to the first reply."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(component), str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["first_reply_s"])


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    warm_runs = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="airssys-startup-") as tmp:
        work = Path(tmp)
        component = work / "echo"
        shutil.copytree(
            ROOT / "components" / "echo",
            component,
            ignore=shutil.ignore_patterns("*.wasm", "__pycache__"),
        )
        cold_build = first_reply(component, work / "cache-a")
        # built already (its build cache is cache-a); empty compile cache: copy builds only
        (work / "cache-b").mkdir()
        shutil.copytree(work / "cache-a" / "builds", work / "cache-b" / "builds")
        cold = first_reply(component, work / "cache-b")
        warm = [first_reply(component, work / "cache-b") for _ in range(warm_runs)]
    warm_median = statistics.median(warm)
    ratios = {
        "warm_vs_cold_first_reply": cold / warm_median,
        "warm_vs_cold_build_first_reply": cold_build / warm_median,
    }
    if args.json:
        emit_json(
            {
                "benchmark": "startup",
                "quick": args.quick,
                "first_reply_s": {"cold_build": cold_build, "cold": cold, "warm": warm},
                "ratios": ratios,
                "machine": machine(),
            }
        )
        return
    print("time to first reply from the Python echo component (a new process each)")
    print(
        table(
            ["caches", "first reply", "warm is faster by"],
            [
                [
                    "cold + build",
                    fmt_time(cold_build),
                    f"{ratios['warm_vs_cold_build_first_reply']:.1f}x",
                ],
                ["cold (built)", fmt_time(cold), f"{ratios['warm_vs_cold_first_reply']:.1f}x"],
                [f"warm (median of {warm_runs})", fmt_time(warm_median), "1.0x"],
            ],
        )
    )


if __name__ == "__main__":
    main()
