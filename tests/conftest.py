"""Shared fixtures: fixture components and a runtime with a private cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "components" / "fixtures"


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.wat"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airssys-cache")


@pytest.fixture
def runtime(shared_cache: Path) -> Iterator[Runtime]:
    with Runtime(cache_dir=shared_cache) as rt:
        yield rt
