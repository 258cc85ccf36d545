"""Shared by the examples: build the sample components, print steps, check outcomes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

from airssys.build import build_component

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ROOT / "components"
failures: list[str] = []


def quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def component(name: str) -> Path:
    """The sample component's directory, built (a cache hit after the first time)."""
    result = build_component(COMPONENTS / name)
    print(f"  {name}: {'cached build' if result.cached else 'built'} ({result.wasm.name})")
    return COMPONENTS / name


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAILED'}] {what}")
    if not ok:
        failures.append(what)


def finish() -> None:
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")
