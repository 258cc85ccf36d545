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


@pytest.fixture(autouse=True)
def _logging_defaults() -> Iterator[None]:
    """Each test starts from structlog's defaults and airssys's own quiet pipeline."""
    import structlog

    from airssys import configure_logging

    structlog.reset_defaults()
    configure_logging()
    yield
    structlog.reset_defaults()
    configure_logging()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airssys-cache")


@pytest.fixture(scope="session")
def built_components(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the sample Python components, built once per session (cached by key)
    and compiled into ``shared_cache``, so that no test pays a build or a compile
    inside its own timeout (fixtures are outside it: ``timeout_func_only``)."""
    import shutil

    from airssys.build import build_component

    target = tmp_path_factory.mktemp("components")
    with Runtime(cache_dir=shared_cache) as rt:
        for name in ("echo", "counter", "crasher", "aggregator", "fileprobe"):
            shutil.copytree(
                ROOT / "components" / name,
                target / name,
                ignore=shutil.ignore_patterns("*.wasm", "__pycache__"),
            )
            rt.load(build_component(target / name, cache_dir=shared_cache).wasm)
    return target


@pytest.fixture
def runtime(shared_cache: Path) -> Iterator[Runtime]:
    with Runtime(cache_dir=shared_cache) as rt:
        yield rt
