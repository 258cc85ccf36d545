"""Loading components: formats, world checks and the refusals that name what is wrong."""

from __future__ import annotations

import pytest

from airssys.errors import ComponentLoadError, MissingExport, UnsupportedImport
from airssys.runtime import HANDLER, Runtime
from tests.conftest import fixture_path

NO_HANDLER = """
(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
  (instance $x (export "ping" (func $f)))
  (export "acme:other/thing@1.0.0" (instance $x)))
"""

WRONG_FUNCTION = """
(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
  (instance $x (export "handle-msg" (func $f)))
  (export "airssys:component/handler@0.1.0" (instance $x)))
"""


def with_import(import_name: str, func: str, signature: str = "(func)") -> str:
    """The echo fixture plus an import it never calls."""
    echo = fixture_path("echo").read_text()
    return echo.replace(
        "(component\n",
        f'(component\n  (import "{import_name}" (instance (export "{func}" {signature})))\n',
        1,
    )


def test_load_from_path_bytes_and_wat_give_the_same_component(runtime: Runtime) -> None:
    path = fixture_path("echo")
    wat = path.read_text()
    from_path = runtime.load(path)
    from_wat = runtime.load(wat, name="echo")
    import wasmtime

    from_bytes = runtime.load(bytes(wasmtime.wat2wasm(wat)), name="echo")
    assert from_path.sha256 == from_wat.sha256 == from_bytes.sha256
    assert from_path.name == "echo"


def test_garbage_bytes_are_refused_naming_the_magic(runtime: Runtime) -> None:
    with pytest.raises(ComponentLoadError, match=r"not WebAssembly.*0asm. magic"):
        runtime.load_bytes(b"PK\x03\x04 this is a zip", name="zip")


def test_truncated_component_is_refused_with_wasmtime_reason(runtime: Runtime) -> None:
    import wasmtime

    wasm = bytes(wasmtime.wat2wasm(fixture_path("echo").read_text()))
    with pytest.raises(ComponentLoadError, match="'cut' is not a valid WebAssembly component"):
        runtime.load_bytes(wasm[: len(wasm) // 2], name="cut")


def test_core_module_is_refused_with_a_hint(runtime: Runtime) -> None:
    with pytest.raises(ComponentLoadError, match="core wasm module, not a component"):
        runtime.load_wat("(module)", name="core")


def test_invalid_wat_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ComponentLoadError, match="not valid WAT"):
        runtime.load_wat("(component (oops))", name="bad")


def test_missing_handler_export_is_named(runtime: Runtime) -> None:
    with pytest.raises(MissingExport) as info:
        runtime.load_wat(NO_HANDLER, name="nohandler")
    assert HANDLER in str(info.value)
    assert "acme:other/thing@1.0.0" in str(info.value)


def test_handler_without_handle_message_is_named(runtime: Runtime) -> None:
    with pytest.raises(MissingExport, match="without a 'handle-message' function"):
        runtime.load_wat(WRONG_FUNCTION, name="wrongfn")


def test_unprovided_import_interface_is_named(runtime: Runtime) -> None:
    with pytest.raises(UnsupportedImport) as info:
        runtime.load_wat(with_import("acme:db/query@1.0.0", "run"), name="db")
    message = str(info.value)
    assert "'acme:db/query@1.0.0'" in message
    assert "airssys:component/messaging@0.1.0" in message  # what would be accepted


def test_unprovided_function_in_a_provided_interface_is_named(runtime: Runtime) -> None:
    wat = with_import("airssys:component/messaging@0.1.0", "teleport")
    with pytest.raises(UnsupportedImport, match=r"'teleport'.*provides: publish, request"):
        runtime.load_wat(wat, name="teleporter")


def test_load_after_close_is_refused(shared_cache: object) -> None:
    from airssys.errors import RuntimeClosed

    rt = Runtime(disk_cache=False)
    rt.close()
    with pytest.raises(RuntimeClosed):
        rt.load_file(fixture_path("echo"))


def test_world_reports_callback_and_imports(runtime: Runtime) -> None:
    host = runtime.load_file(fixture_path("host"))
    echo = runtime.load_file(fixture_path("echo"))
    assert host.has_callback and not echo.has_callback
    assert "airssys:component/messaging@0.1.0" in host.world.imports
    assert echo.world.imports == ()


# --- imports the linker does not define (issue 8, item 9) ------------------------------


def test_wasi_http_import_is_refused_at_load_naming_it_and_the_fix(runtime: Runtime) -> None:
    # a default componentize-js build imports wasi:http; the linker has WASI 0.2 without it
    with pytest.raises(UnsupportedImport) as info:
        runtime.load_file(fixture_path("http"))
    assert isinstance(info.value, ComponentLoadError)
    message = str(info.value)
    assert "'wasi:http/types@0.2.0'" in message
    assert "--disable http fetch-event" in message
    assert "resource implementation is missing" in message  # wasmtime's own reason


def test_any_wasi_interface_the_linker_lacks_is_refused(runtime: Runtime) -> None:
    wat = with_import("wasi:nn/inference@0.2.0-rc-2024-10-28", "compute")
    with pytest.raises(UnsupportedImport) as info:
        runtime.load_wat(wat, name="nn")
    message = str(info.value)
    assert "'wasi:nn/inference@0.2.0-rc-2024-10-28'" in message
    assert "wit/airssys.wit" in message
    assert "fetch-event" not in message  # the componentize-js hint is for wasi:http only


@pytest.mark.parametrize("version", ["0.2.0", "0.2.9"])
def test_wasi_interfaces_the_linker_defines_are_accepted(runtime: Runtime, version: str) -> None:
    # the linker answers for versions too: componentize-py 0.25 imports WASI @0.2.9
    signature = "(func (result (list (tuple string string))))"
    wat = with_import(f"wasi:cli/environment@{version}", "get-environment", signature)
    component = runtime.load_wat(wat, name="env")
    assert component.world.uses_wasi
    with runtime.instantiate(component) as instance:
        assert instance.handle_message("s", b"ok") == b"ok"
