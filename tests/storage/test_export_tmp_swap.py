"""Export writes through a private temporary file: a name planted beside the target,
where an older airssys wrote its temporary, is neither followed nor touched."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from airssys.storage import MemoryBackend, export, import_


def test_a_planted_symlink_at_the_old_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"not yours to overwrite")
    path = tmp_path / "backup.jsonl"
    planted = tmp_path / f".{path.name}.tmp-{os.getpid()}"  # the name the old code opened
    planted.symlink_to(victim)
    backend = MemoryBackend()
    backend.set("/app/a/default", b"k", b"v")
    export(backend, path)
    assert victim.read_bytes() == b"not yours to overwrite"
    assert planted.is_symlink()  # left as it was
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not path.is_symlink()
    fresh = MemoryBackend()
    import_(fresh, path)
    assert fresh.get("/app/a/default", b"k") == b"v"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [victim.name, path.name, planted.name]
    )  # no temporary left
