"""JavaScript components built with npm and ComponentizeJS (where npm is there): one that
implements only the handler, built against `handler-only` (bulk is optional), and the
template as `airssys init --lang js` creates it (world `handler-text`: JSON as text)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airssys import codec
from airssys.actors._loading import load
from airssys.cli._init import Lang, create_project
from airssys.errors import HandlerError
from airssys.runtime import Component, ComponentInstance, Limits, Runtime
from benches import _jsbuild

pytestmark = pytest.mark.skipif(_jsbuild.npm() is None, reason="npm is not installed")


@dataclasses.dataclass(frozen=True)
class Built:
    template: Path  # the project as created, built with `npm run build`
    handler_only: Path  # HANDLER_ONLY_APP built against handler-only


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Both components, built side by side (about a minute each; npm install once)."""
    root = tmp_path_factory.mktemp("js")
    template = create_project("greeter", Lang.JS, root / "greeter").path
    modules = root / "npm"
    first = _jsbuild.build_template(template, modules)
    second = _jsbuild.build_handler_only(template, root / "only", modules)
    _jsbuild.finish(first)
    _jsbuild.finish(second)
    return Built(template, root / "only" / "handler-only.wasm")


@pytest.fixture
def js_runtime(shared_cache: Path) -> Iterator[Runtime]:
    with Runtime(cache_dir=shared_cache) as rt:
        yield rt


def _exports(runtime: Runtime, component: Component) -> set[str]:
    """What the component exports. (Its imports are its world's plus the WASI 0.2 that
    ComponentizeJS always brings, which the host provides, so `wasm-tools component
    targets` would refuse it for importing more than the world names.)"""
    return set(component.wasmtime_component.type.exports(runtime.engine))


def _greeting(name: str) -> bytes:
    return codec.encode({"name": name})


def _ask(instance: ComponentInstance, payload: bytes) -> object:
    reply = instance.handle_message("me", payload)
    assert reply is not None
    return codec.decode(reply)


@pytest.mark.timeout(300)
def test_a_handler_only_component_builds_without_bulk_and_answers(
    built: Built, js_runtime: Runtime
) -> None:
    component = js_runtime.load(built.handler_only)  # the world and the typed imports checked
    assert _exports(js_runtime, component) == {"airssys:component/handler@0.1.0"}
    with js_runtime.instantiate(component) as instance:
        assert instance.lane == "list"
        payload = _greeting("Ada")
        assert instance.handle_message("me", payload) == payload
        with pytest.raises(HandlerError, match="asked to fail"):
            instance.handle_message("fail", payload)
        assert instance.alive


def _template(runtime: Runtime, built: Built) -> tuple[Component, Limits]:
    loaded = load(runtime, built.template, None)  # the manifest's limits over the defaults
    return loaded.component, loaded.limits


@pytest.mark.timeout(300)
def test_the_template_as_created_takes_json_as_text(built: Built, js_runtime: Runtime) -> None:
    component, limits = _template(js_runtime, built)
    assert _exports(js_runtime, component) == {
        "airssys:component/handler@0.1.0",
        "airssys:component/bulk-text@0.1.0",
    }
    with js_runtime.instantiate(component, limits=limits) as instance:
        assert (instance.lane, instance.text_form) == ("bulk", True)
        assert _ask(instance, _greeting("Ada")) == {"greeting": "Hello, Ada!", "count": 1}
        with pytest.raises(HandlerError, match="speaks JSON only"):
            instance.handle_message("me", codec.encode(b"hi", "raw"))
        # the aim of the text lane: well under 300 fuel per byte of JSON (hex: ~47,500)
        payload = _greeting("A" * (64 * 1024))
        assert _ask(instance, payload) == {"greeting": f"Hello, {'A' * 65536}!", "count": 2}
        assert instance.fuel_used / len(payload) < 300


@pytest.mark.timeout(300)
def test_the_template_answers_a_mebibyte_of_json_within_its_limits(
    built: Built, js_runtime: Runtime
) -> None:
    component, limits = _template(js_runtime, built)
    assert limits.fuel_per_message == Limits().fuel_per_message  # the default fuel
    # the deadline is not what this test is about: a loaded machine may run it slowly
    roomy = dataclasses.replace(limits, timeout_ms=30_000)
    with js_runtime.instantiate(component, limits=roomy) as instance:
        name = "\u00e9" * (512 * 1024)
        assert _ask(instance, _greeting(name)) == {"greeting": f"Hello, {name}!", "count": 1}
        assert instance.fuel_used < limits.fuel_per_message
    assert json.loads((built.template / "package.json").read_text())["scripts"]["build"]
