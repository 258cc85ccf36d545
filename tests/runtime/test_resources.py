"""When the host itself runs short, the error says so (issue 8, item 10)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT, fixture_path

_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    limit = 1024 << 20  # 1 GiB of address space: less than one instance reserves
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from airssys.errors import ComponentTrap, ResourceExhausted
    from airssys.runtime import Runtime
    with Runtime(disk_cache=False) as runtime:
        component = runtime.load(sys.argv[1])
        try:
            runtime.instantiate(component).close()
        except ResourceExhausted as exc:
            print("ResourceExhausted", isinstance(exc, MemoryError), exc)
        except ComponentTrap as exc:
            print("ComponentTrap", exc)
        else:
            print("instantiated")
    """
)


def test_instantiation_without_address_space_is_a_resource_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(fixture_path("echo"))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    kind, is_memory_error, message = result.stdout.strip().split(" ", 2)
    assert kind == "ResourceExhausted"
    assert is_memory_error == "True"
    assert "ulimit -v" in message
