"""Helpers shared by the benchmarks: timing loops, tables, argument parsing."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benches" / "peers"  # the peers' plugins, kept in the repository
FIXTURES = ROOT / "components" / "fixtures"


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="shorter runs (under a minute)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser.parse_args(argv)


def per_call(fn: Callable[[], object], budget_s: float, rounds: int = 5) -> float:
    """Seconds per call: the median over ``rounds`` rounds of ~budget_s/rounds each."""
    fn()  # warm up
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget_s / rounds / one))
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine()}


def emit_json(obj: dict[str, Any]) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def quiet_logs() -> None:
    """Only critical logs: the benchmarks crash actors on purpose, thousands of times."""
    import airssys

    airssys.configure_logging("critical")
