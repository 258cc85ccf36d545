"""``airssys storage ls|export|import``, run in a subprocess as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airssys.actors import open_system
from airssys.storage import open_backend
from tests.conftest import ROOT
from tests.services.conftest import BUILD_TIMEOUT, ask

pytestmark = pytest.mark.timeout(600)


def storage(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "AIRSSYS_DATA_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "airssys.cli", "storage", *args],
        capture_output=True,
        input=stdin,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def seed(data: Path, system: str = "prod") -> None:
    backend = open_backend("sqlite", data, system=system)
    try:
        backend.set("/app/a/default", b"k1", b"v1", quota=None)
        backend.set("/app/a/default", b"k2", bytes(range(256)), quota=None)
        backend.set("/app/b/cache", "ключ".encode(), b"", quota=None)
    finally:
        backend.close()


def contents(data: Path, system: str, kind: str = "sqlite") -> dict[str, dict[bytes, bytes]]:
    backend = open_backend(kind, data, system=system)
    try:
        out = {}
        for ns in backend.namespaces():
            keys = backend.list_keys(ns).keys
            out[ns] = dict(zip(keys, backend.get_many(ns, keys), strict=True))
        return out  # type: ignore[return-value]
    finally:
        backend.close()


def test_ls_lists_namespaces_keys_and_bytes(tmp_path: Path) -> None:
    seed(tmp_path)
    done = storage("ls", "--data-dir", str(tmp_path), "--system", "prod")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [
        "/app/a/default\t2\t262",
        "/app/b/cache\t1\t8",
    ]
    assert "2 namespaces, 3 keys, 270 bytes" in done.stderr.decode()


@pytest.mark.parametrize(
    ("name", "fmt"), [("backup.jsonl", None), ("backup.msgpack", None), ("b", "msgpack")]
)
def test_export_then_import_into_another_backend(
    tmp_path: Path, name: str, fmt: str | None
) -> None:
    seed(tmp_path)
    file = tmp_path / name
    extra = ["--format", fmt] if fmt else []
    done = storage("export", str(file), "--data-dir", str(tmp_path), "--system", "prod", *extra)
    assert done.returncode == 0, done.stderr
    assert "exported 3 keys in 2 namespaces (270 bytes)" in done.stderr.decode()
    if name.endswith(".jsonl"):
        header = json.loads(file.read_text().splitlines()[0])
        assert header == {"format": "airssys-storage", "version": 1}
    done = storage(
        "import",
        str(file),
        "--data-dir",
        str(tmp_path / "new"),
        "--system",
        "copy",
        "--backend",
        "lmdb",
        *extra,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 3 keys in 2 namespaces" in done.stderr.decode()
    assert contents(tmp_path / "new", "copy", "lmdb") == contents(tmp_path, "prod")


def test_a_pipe_and_one_namespace(tmp_path: Path) -> None:
    seed(tmp_path)
    out = storage(
        "export", "-", "--data-dir", str(tmp_path), "--system", "prod", "-n", "/app/b/cache"
    )
    assert out.returncode == 0, out.stderr
    done = storage(
        "import", "-", "--data-dir", str(tmp_path), "--system", "other", stdin=out.stdout
    )
    assert done.returncode == 0, done.stderr
    assert contents(tmp_path, "other") == {"/app/b/cache": {"ключ".encode(): b""}}


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    done = storage("ls", "--data-dir", str(tmp_path), "--system", "absent")
    assert done.returncode == 1
    assert done.stderr.decode().startswith("error: no sqlite storage for system 'absent'")
    assert not (tmp_path / "absent.sqlite3").exists()  # nothing created
    (tmp_path / "bad.jsonl").write_text('{"format": "something else"}\n')
    done = storage("import", str(tmp_path / "bad.jsonl"), "--data-dir", str(tmp_path))
    assert done.returncode == 1 and done.stderr.decode().startswith("error: ")
    done = storage("export", "x", "--backend", "redis")
    assert done.returncode == 2


@BUILD_TIMEOUT
async def test_a_components_data_moves_to_another_system(
    probe: Path, shared_cache: Path, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    async with open_system(cache_dir=shared_cache, data_dir=old, name="first") as system:
        ref = await system.spawn_component(probe, name="p")
        await ask(ref, op="set", key="moved", value="across systems")
    backup = tmp_path / "backup.jsonl"
    assert (
        storage("export", str(backup), "--data-dir", str(old), "--system", "first").returncode == 0
    )
    done = storage(
        "import", str(backup), "--data-dir", str(new), "--system", "second", "--backend", "lmdb"
    )
    assert done.returncode == 0, done.stderr
    async with open_system(
        cache_dir=shared_cache, data_dir=new, name="second", storage="lmdb"
    ) as system:
        ref = await system.spawn_component(probe, name="p")
        assert await ask(ref, op="get", key="moved") == {"value": "across systems"}
