"""When the host itself runs short, the error says so (issue 8, item 10)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT, fixture_path

_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    limit = int(sys.argv[3]) << 20  # MiB of address space
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from airssys.errors import ComponentTrap, ResourceExhausted
    from airssys.runtime import Runtime
    with Runtime(disk_cache=False, reserve_memory=sys.argv[2] == "reserve") as runtime:
        component = runtime.load(sys.argv[1])
        if sys.argv[2] == "many":
            instances = [runtime.instantiate(component) for _ in range(2000)]
            print("instantiated", len(instances))
            for instance in instances:
                instance.close()
            raise SystemExit(0)
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


def _probe(mode: str, mib: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(fixture_path("echo")), mode, str(mib)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_instantiation_without_address_space_is_a_resource_error() -> None:
    """With 4 GiB reserved per memory (reserve_memory=True), 1 GiB of address space
    is not enough for one instance: a resource error that says so, not a trap."""
    result = _probe("reserve", 1024)
    assert result.returncode == 0, result.stderr
    kind, is_memory_error, message = result.stdout.strip().split(" ", 2)
    assert kind == "ResourceExhausted"
    assert is_memory_error == "True"
    assert "ulimit -v" in message


def test_the_default_runtime_fits_thousands_of_instances_under_a_ulimit() -> None:
    """No up-front reservation by default: 2000 instances under `ulimit -v` 4 GiB."""
    result = _probe("many", 4096)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "instantiated 2000"
