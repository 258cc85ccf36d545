"""A small real disk for tests that fill one: a tmpfs mounted under the test's
directory (root only; the test is skipped, saying why, where it cannot be mounted)
and unmounted after it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ("small_disk",)


@contextmanager
def small_disk(parent: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mount's syntax: ``256k``, ``4m``) at a new directory."""
    where = parent / f"disk-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
