"""Shared by the examples: build the sample components, print steps, check outcomes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import airssys
from airssys.build import BuildError, build_component, require_builder

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ROOT / "components"
failures: list[str] = []


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Set up, run the example, check: exit 1 if a check failed, 130 on Ctrl-C."""
    setup()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finish()


def setup() -> None:
    """Quiet logs, and a builder: one line and exit 1 without componentize-py.

    Only critical logs by default (the examples crash components on purpose);
    ``airssys examples`` passes its --log-level and --json-logs on through
    AIRSSYS_LOG_LEVEL and AIRSSYS_LOG_JSON.
    """
    airssys.configure_logging(
        os.environ.get("AIRSSYS_LOG_LEVEL", "critical"),
        json=os.environ.get("AIRSSYS_LOG_JSON") == "1",
    )
    try:
        require_builder()
    except BuildError as exc:
        sys.exit(f"error: {exc}")


def component(name: str) -> Path:
    """The sample component's directory, built (a cache hit after the first time)."""
    try:
        result = build_component(COMPONENTS / name)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
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
