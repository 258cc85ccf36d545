"""Imports are checked by type at load: every function the host defines untyped is
compared with what the component imports (parameters, results, records, variants,
enums, resources), and every world in wit/ builds and loads.

The components here are made from WIT with ``wasm-tools component embed --dummy``
(functions that trap if called; loading runs none of them), from airssys's own WIT or
a copy with one type changed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import wasmtime

from airssys.build import WIT_DIR, BuilderMissing, _native
from airssys.errors import UnsupportedImport
from airssys.runtime import Runtime
from tests.conftest import fixture_path

try:
    WASM_TOOLS = _native.toolchain()[1]
    MISSING = ""
except BuilderMissing as exc:  # pragma: no cover - dev installs wasm-tools
    WASM_TOOLS, MISSING = "", str(exc)

pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

WORLDS = re.findall(r"^world ([a-z][a-z0-9-]*) \{", (WIT_DIR / "airssys.wit").read_text(), re.M)


def dummy(wit: Path, world: str, out: Path) -> Path:
    """A component of ``world`` whose functions trap (wasm-tools' --dummy)."""
    core, component = out.with_suffix(".core.wasm"), out
    for args in (
        ["component", "embed", "--dummy", "--world", world, str(wit), "-o", str(core)],
        ["component", "new", str(core), "-o", str(component)],
    ):
        done = subprocess.run([WASM_TOOLS, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    return component


def changed_wit(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of airssys's WIT with ``old`` replaced by ``new`` in ``file``."""
    wit = tmp_path / "wit"
    shutil.copytree(WIT_DIR, wit)
    path = wit / file
    text = path.read_text()
    assert old in text, f"{old!r} is not in {file}"
    path.write_text(text.replace(old, new))
    return wit


def test_the_wit_has_the_three_worlds() -> None:
    assert WORLDS == ["component", "handler-only", "handler-text"]


@pytest.mark.parametrize("world", WORLDS)
def test_every_world_builds_and_loads_with_its_exports(
    runtime: Runtime, tmp_path: Path, world: str
) -> None:
    component = runtime.load(dummy(WIT_DIR, world, tmp_path / f"{world}.wasm"))
    exports = set(component.wasmtime_component.type.exports(runtime.engine))
    handler, bulk_text = "airssys:component/handler@0.1.0", "airssys:component/bulk-text@0.1.0"
    expected = {
        "component": {
            handler,
            bulk_text,
            "airssys:component/callback@0.1.0",
            "airssys:component/snapshot@0.1.0",
        },
        "handler-only": {handler},  # bulk is optional: this world does not force it
        "handler-text": {handler, bulk_text},
    }[world]
    assert exports == expected
    assert component.world.has_callback == (world == "component")
    assert component.world.has_snapshot == (world == "component")


def test_every_function_the_world_imports_has_a_host_type(runtime: Runtime) -> None:
    """The typed check covers everything the host defines untyped (nothing skipped)."""
    from wasmtime import component as wc

    from airssys.runtime._host import define_imports

    types = define_imports(wc.Linker(runtime.engine), lambda _store: None)  # type: ignore[arg-type,return-value]
    kinds = {k: set(v) for k, v in types.items()}
    assert set(kinds) == {
        "airssys:component/messaging@0.1.0",
        "airssys:component/logging@0.1.0",
        "airssys:component/storage@0.1.0",
        "airssys:component/http@0.1.0",
        "airssys:component/process@0.1.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
        "wasi:keyvalue/batch@0.2.0-draft2",
    }
    assert kinds["wasi:keyvalue/batch@0.2.0-draft2"] == {"get-many", "set-many", "delete-many"}
    assert "[method]bucket.list-keys" in kinds["wasi:keyvalue/store@0.2.0-draft2"]


OLD_GET_MANY = (
    "get-many: func(bucket: borrow<bucket>, keys: list<string>) -> "
    "result<list<option<tuple<string, list<u8>>>>, error>;"
)


def _refused(runtime: Runtime, wasm: Path) -> str:
    with pytest.raises(UnsupportedImport) as caught:
        runtime.load(wasm)
    assert runtime.live_instances == 0  # refused at load: nothing ran, nothing to restart
    return str(caught.value)


def test_an_older_get_many_is_refused_at_load_naming_the_revision(
    runtime: Runtime, tmp_path: Path
) -> None:
    batch = (WIT_DIR / "deps" / "keyvalue" / "batch.wit").read_text()
    current = re.search(r"get-many: func\([^;]*;", batch)
    assert current is not None
    wit = changed_wit(tmp_path, "deps/keyvalue/batch.wit", current.group(0), OLD_GET_MANY)
    said = _refused(runtime, dummy(wit, "handler-only", tmp_path / "old.wasm"))
    assert (
        "imports wasi:keyvalue/batch@0.2.0-draft2#get-many as func(bucket: borrow<bucket>, " in said
    )
    assert "result<list<option<tuple<string, list<u8>>>>, error>" in said  # what it expects
    assert "get-many: func(borrow<bucket>, list<string>) -> " in said  # what the host offers
    assert "result<list<tuple<string, option<list<u8>>>>, error>" in said
    assert "wasi:keyvalue 0.2.0-draft2 as Spin vendors it" in said


@pytest.mark.parametrize(
    ("file", "old", "new", "named", "offered"),
    [
        (
            "airssys.wit",
            "send: func(to: string, payload: list<u8>) -> result<_, string>;",
            "send: func(to: string, payload: string) -> result<_, string>;",
            "airssys:component/messaging@0.1.0#send as func(to: string, payload: string)",
            "send: func(string, list<u8>) -> result<_, string>",
        ),
        (
            "airssys.wit",
            "enum level { trace, debug, info, warn, error }",
            "enum level { trace, debug, info, warn, error, fatal }",
            "airssys:component/logging@0.1.0#log as func(level: enum { trace, debug, info, warn, "
            "error, fatal }, message: string)",
            "log: func(enum { trace, debug, info, warn, error }, string)",
        ),
        (
            "deps/keyvalue/store.wit",
            "    cursor: option<string>\n",
            "    next: option<string>\n",
            "wasi:keyvalue/store@0.2.0-draft2#[method]bucket.list-keys as func(self: borrow<bucket>"
            ", cursor: option<string>) -> result<record { keys: list<string>, next: ",
            "[method]bucket.list-keys: func(borrow<bucket>, option<string>) -> "
            "result<record { keys: list<string>, cursor: option<string> }",
        ),
        (
            "airssys.wit",
            "run: func(command: string, args: list<string>, stdin: list<u8>, timeout-ms: u32)",
            "run: func(command: string, args: list<string>, stdin: list<u8>, timeout-ms: u64)",
            "airssys:component/process@0.1.0#run",
            "run: func(string, list<string>, list<u8>, u32)",
        ),
    ],
)
def test_an_import_of_another_shape_is_refused_naming_both_types(
    runtime: Runtime, tmp_path: Path, file: str, old: str, new: str, named: str, offered: str
) -> None:
    wit = changed_wit(tmp_path, file, old, new)
    said = _refused(runtime, dummy(wit, "handler-only", tmp_path / "changed.wasm"))
    assert named in said
    assert f"the host offers {offered}" in said


def test_another_keyvalue_version_is_told_which_one_the_host_speaks(
    runtime: Runtime, tmp_path: Path
) -> None:
    wit = tmp_path / "wit"
    shutil.copytree(WIT_DIR, wit)
    for path in wit.rglob("*.wit"):
        path.write_text(path.read_text().replace("0.2.0-draft2", "0.2.0-draft"))
    said = _refused(runtime, dummy(wit, "handler-only", tmp_path / "draft.wasm"))
    assert "imports 'wasi:keyvalue/" in said and "@0.2.0-draft'" in said
    assert "the host provides wasi:keyvalue 0.2.0-draft2" in said


@pytest.mark.parametrize(
    ("fixture", "world"), [("echo", "handler-only"), ("echo-text", "handler-text")]
)
def test_hand_written_components_target_their_worlds(
    tmp_path: Path, fixture: str, world: str
) -> None:
    """WAT by hand, checked by wasm-tools against the world it claims."""
    wasm = tmp_path / f"{fixture}.wasm"
    wasm.write_bytes(bytes(wasmtime.wat2wasm(fixture_path(fixture).read_text())))
    command = [WASM_TOOLS, "component", "targets", str(WIT_DIR), str(wasm), "--world", world]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(300)
def test_a_built_python_component_exports_the_component_world(
    built_components: Path, runtime: Runtime
) -> None:
    """componentize-py builds against `component`. (Its imports are the world's plus all
    of WASI 0.2, which the host provides: `wasm-tools component targets` would refuse
    them, so the exports are compared.)"""
    component = runtime.load(built_components / "echo" / "echo.wasm")
    # (componentize-py adds an export of its own, `exports`)
    assert set(component.wasmtime_component.type.exports(runtime.engine)) >= {
        "airssys:component/handler@0.1.0",
        "airssys:component/bulk-text@0.1.0",
        "airssys:component/callback@0.1.0",
        "airssys:component/snapshot@0.1.0",
    }
    with runtime.instantiate(component) as instance:
        assert (instance.lane, instance.text_form) == ("bulk", True)
        reply = instance.handle_message("me", b"\x80\x04" + '{"t": "\u00e9"}'.encode())
        assert reply == b"\x80\x04" + '{"t":"\u00e9"}'.encode()  # the SDK writes compact JSON
