"""Component.toml: the schema, and errors that name file, key and what is accepted."""

from __future__ import annotations

import contextlib
import datetime
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airssys.errors import ManifestError
from airssys.manifest import (
    _SECTIONS,
    ComponentManifest,
    load_manifest,
    parse_manifest,
    parse_size,
)
from airssys.names import check_name

GOOD = """
[component]
name = "counter"
version = "0.1.0"
wasm = "counter.wasm"

[limits]
memory = "4MiB"
fuel-per-message = 10_000_000
timeout-ms = 100
mailbox = 1000
"""


def test_good_manifest_parses(tmp_path: Path) -> None:
    path = tmp_path / "Component.toml"
    path.write_text(GOOD)
    manifest = load_manifest(tmp_path)  # a directory works too
    assert (manifest.name, manifest.version) == ("counter", "0.1.0")
    assert manifest.wasm == (tmp_path / "counter.wasm").resolve()
    assert manifest.limits.memory == 4 * 1024 * 1024
    assert manifest.limits.fuel_per_message == 10_000_000
    assert manifest.limits.timeout_ms == 100
    assert manifest.limits.mailbox == 1000
    assert manifest.limits.max_payload is None


@pytest.mark.parametrize(
    ("text", "size"),
    [("4MiB", 4 * 1024**2), ("64 KiB", 65536), ("1.5GB", 1_500_000_000), (512, 512), ("10", 10)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_unknown_key_names_file_key_and_accepted_keys() -> None:
    text = GOOD.replace("mailbox = 1000", "mailbox = 1000\nthreads = 4")
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, path="svc/Component.toml")
    message = str(info.value)
    assert "svc/Component.toml" in message
    assert "limits.threads" in message
    assert "memory, fuel-per-message, timeout-ms, mailbox, max-payload" in message


def test_unknown_section_is_named() -> None:
    with pytest.raises(
        ManifestError, match=r"unknown section \[network\]; accepted: \[component\]"
    ):
        parse_manifest(GOOD + "\n[network]\nhosts = []\n")


def test_bad_unit_names_the_accepted_units() -> None:
    with pytest.raises(ManifestError, match=r"limits.memory: '4 parsecs' is not a size.*MiB"):
        parse_manifest(GOOD.replace('"4MiB"', '"4 parsecs"'))


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("timeout-ms = 100", "timeout-ms = 0", "timeout-ms"),
        ('memory = "4MiB"', 'memory = "1KiB"', "memory"),
        ("mailbox = 1000", "mailbox = -5", "mailbox"),
    ],
)
def test_out_of_range_values_name_the_range(old: str, new: str, key: str) -> None:
    with pytest.raises(
        ManifestError, match=rf"limits.{key}: .* out of range; accepted: \d+ to \d+"
    ):
        parse_manifest(GOOD.replace(old, new))


def test_wrong_types_and_missing_keys() -> None:
    with pytest.raises(ManifestError, match="limits.fuel-per-message: expected a whole number"):
        parse_manifest(GOOD.replace("10_000_000", "1.5"))
    with pytest.raises(ManifestError, match="missing key component.wasm"):
        parse_manifest(GOOD.replace('wasm = "counter.wasm"', ""))
    with pytest.raises(ManifestError, match="component.name 'Counter!'"):
        parse_manifest(GOOD.replace('"counter"', '"Counter!"'))
    with pytest.raises(ManifestError, match="not valid TOML"):
        parse_manifest("[component\n")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "nope.toml")


# --- bad values: always a ManifestError naming the file, the key and what is accepted ---


def _with(component: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> str:
    """A good manifest with some values replaced or added (the values are TOML text)."""
    tables = {
        "component": {"name": '"counter"', "version": '"0.1.0"', "wasm": '"counter.wasm"'},
        "limits": {"memory": '"4MiB"'},
    }
    tables["component"].update(component or {})
    tables["limits"].update(limits or {})
    return "".join(
        f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in table.items())
        for section, table in tables.items()
    )


_BAD_VALUES = [
    # each of these raised TypeError, OverflowError or ValueError, or was accepted
    (_with(limits={"max-payload": "1.5"}), "limits.max-payload", r"expected a size.*\"4MiB\""),
    (_with(limits={"max-payload": f'"{"1" * 400}"'}), "limits.max-payload", r"1 to \d+ bytes"),
    (_with(limits={"max-payload": "1" * 400}), "limits.max-payload", r"1 to \d+ bytes"),
    (_with(limits={"max-payload": "1979-05-27"}), "limits.max-payload", "expected a size"),
    (_with(limits={"max-payload": '"\u0663MiB"'}), "limits.max-payload", "not a size"),
    (_with(limits={"max-payload": '"1e3"'}), "limits.max-payload", "not a size"),
    (_with(component={"wasm": '"a\\u0000b"'}), "component.wasm", "no control characters"),
    (_with(component={"source": '"app\\u0007.py"'}), "component.source", "no control char"),
    (_with(component={"version": '"1\\n"'}), "component.version", "no control characters"),
    (_with(component={"name": '"abc\\n"'}), "component.name", "a name is 1 to 255 char"),
    (_with(component={"name": '"abc\\r\\n"'}), "component.name", "no control characters"),
    (_with(component={"name": f'"{"a" * 256}"'}), "component.name", "longer than 255"),
    (_with(component={"name": "5"}), "component.name", "must be a string"),
    (_with(component={"name": '".."'}), "component.name", "reserved"),
    (_with(component={"name": '"a/b"'}), "component.name", "contains '/'"),
    (_with(component={"name": '"-x"'}), "component.name", "starting with a letter or digit"),
    (_with(component={"description": "5"}), "component.description", "must be a string"),
    (_with(limits={"timeout-ms": "nan"}), "limits.timeout-ms", r"accepted: 1 to \d+"),
    (_with(limits={"timeout-ms": "inf"}), "limits.timeout-ms", r"accepted: 1 to \d+"),
    (_with(limits={"fuel-per-message": "true"}), "limits.fuel-per-message", "1 to"),
    (_with(limits={"fuel-per-message": "1e3"}), "limits.fuel-per-message", "whole number"),
    (_with(limits={"fuel-per-message": "[1]"}), "limits.fuel-per-message", "1 to"),
]


@pytest.mark.parametrize(
    ("text", "key", "accepted"),
    _BAD_VALUES,
    ids=[f"{key}-{i}" for i, (_, key, _) in enumerate(_BAD_VALUES)],
)
def test_bad_values_are_manifest_errors(text: str, key: str, accepted: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, path="svc/Component.toml")
    message = str(info.value)
    assert message.startswith("svc/Component.toml: ")
    assert key in message
    assert re.search(accepted, message), message


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("memory = 1.5", "limits.memory"),  # TypeError before
        (f'memory = "{"1" * 400}"', "limits.memory"),  # OverflowError before
    ],
)
def test_the_reported_memory_values_are_refused(raw: str, key: str) -> None:
    with pytest.raises(ManifestError, match=rf"svc/Component.toml: {key}: .*accepted|MiB"):
        parse_manifest(GOOD.replace('memory = "4MiB"', raw), path="svc/Component.toml")


def test_name_with_a_trailing_newline_is_refused() -> None:
    # the old pattern ended in `$`, which matches before a final newline
    with pytest.raises(ManifestError, match=r"component.name 'abc\\n' holds a control character"):
        parse_manifest(GOOD.replace('"counter"', '"abc\\n"'))


def test_nul_in_wasm_path_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"component.wasm 'a\\x00b' holds a control character"):
        parse_manifest(GOOD.replace('"counter.wasm"', '"a\\u0000b"'))


@pytest.mark.parametrize("key", ["name", "wasm"])
def test_lone_surrogates_are_refused(key: str) -> None:
    old = {"name": '"counter"', "wasm": '"counter.wasm"'}[key]
    text = GOOD.replace(old, '"a\ud800b"')  # a raw surrogate in the text itself
    with pytest.raises(ManifestError, match=rf"component.{key} .*lone surrogate"):
        parse_manifest(text)


def test_lone_surrogate_in_source_and_description_are_refused() -> None:
    with pytest.raises(ManifestError, match="component.source .*lone surrogate"):
        parse_manifest(GOOD.replace("[component]\n", '[component]\nsource = "\udfff.py"\n'))
    with pytest.raises(ManifestError, match="component.description must be a string"):
        parse_manifest(GOOD.replace("[component]\n", '[component]\ndescription = "\udfff"\n'))


def test_unknown_keys_with_odd_characters_are_shown_escaped() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(GOOD + '\n["\ud800\\u0000"]\n')
    assert "unknown section ['\\ud800\\x00']" in str(info.value)


def test_toml_the_parser_cannot_hold_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="not valid TOML: Exceeds the limit"):
        parse_manifest(GOOD.replace("mailbox = 1000", "mailbox = " + "1" * 5000))
    with pytest.raises(ManifestError, match="not valid TOML: nested too deeply"):
        parse_manifest(GOOD + "\n[component.x]\n" + "y = " + "[" * 5000 + "]" * 5000 + "\n")


def test_parse_size_refuses_what_it_cannot_hold() -> None:
    with pytest.raises(ManifestError, match="size: expected a size, got 1.5"):
        parse_size(1.5)  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="too large; sizes go up to 2\\*\\*64 bytes"):
        parse_size("1" * 400 + "GiB")
    with pytest.raises(ManifestError, match="not a size"):
        parse_size("1" * 5000 + "x")
    assert parse_size("0.5KiB") == 512


def test_a_symlink_loop_in_a_path_is_a_manifest_error(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "Component.toml").write_text(GOOD.replace('"counter.wasm"', '"loop/x.wasm"'))
    with pytest.raises(ManifestError, match="component.wasm 'loop/x.wasm' cannot be resolved"):
        load_manifest(tmp_path)


def test_unreadable_manifests_are_manifest_errors(tmp_path: Path) -> None:
    (tmp_path / "Component.toml").write_bytes(b"[component]\nname = '\xff'\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifest(tmp_path)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "a\0b.toml")


# --- any TOML document at all: a ComponentManifest or a ManifestError, nothing else ---

_KEYS = [key for keys in _SECTIONS.values() for key in keys]
_ODD_TEXT = ["4MiB", "1" * 400, "a\x00b", "abc\n", "\ud800", "counter", "1.5GB", "0.5KiB", ".."]
_chars = (
    st.characters(exclude_categories=())
    | st.sampled_from(["\x00", "\n", "\x7f", "\x85", "\ud800", "\udfff", '"', "\\", "/", "."])
    | st.characters(categories=["Cs"])
)
_texts = st.text(_chars, max_size=12) | st.sampled_from(_ODD_TEXT)
_scalars = (
    st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**1200), max_value=2**1200)
    | st.floats()
    | _texts
    | st.dates()
    | st.times()
    | st.datetimes()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)
_names = st.sampled_from([*_SECTIONS, *_KEYS]) | _texts
_documents = st.dictionaries(
    _names, st.dictionaries(_names, _values, max_size=6) | _values, max_size=4
)


_plausible = st.sampled_from(["4MiB", "1.5GB", "x.wasm", "app.py", "counter", 100, 65536]) | (
    st.integers(0, 2 * 10**7)
)


@st.composite
def _mutated_good(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with a few keys set to anything: reaches the deeper checks."""
    doc: dict[str, Any] = tomllib.loads(GOOD)
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(["component", "limits"]))
        known = draw(st.integers(0, 3)) > 0
        key = draw(st.sampled_from(_SECTIONS[section]) if known else _texts)
        doc[section][key] = draw(_plausible if draw(st.booleans()) else _values)
    return doc


def _toml_string(text: str) -> str:
    escaped = (
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or c == "\x7f" else "\\" + c if c in '"\\' else c
        for c in text
    )
    return '"' + "".join(escaped) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        )
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _to_toml(doc: dict[str, Any]) -> str:
    """A tiny TOML emitter: plain keys first, then one [table] per dict value."""
    lines = [
        f"{_toml_string(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)
    ]
    for key, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{_toml_string(key)}]")
            lines += [f"{_toml_string(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _comparable(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


@settings(max_examples=400, deadline=None)
@given(doc=st.integers(0, 3).flatmap(lambda n: _documents if n == 0 else _mutated_good()))
def test_any_toml_document_is_a_manifest_or_a_manifest_error(doc: dict[str, Any]) -> None:
    text = _to_toml(doc)
    assert _comparable(tomllib.loads(text)) == _comparable(doc)  # the emitter is faithful
    try:
        manifest = parse_manifest(text, path="fuzz/Component.toml")
    except ManifestError as exc:
        assert str(exc).startswith("fuzz/Component.toml")
        return
    assert isinstance(manifest, ComponentManifest)
    check_name(manifest.name)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", manifest.name)
    for path in (manifest.wasm, manifest.source):
        assert path is None or str(path).isprintable()


@settings(max_examples=300, deadline=None)
@given(text=st.text(_chars, max_size=200) | st.sampled_from([GOOD]).map(lambda g: g + "\n"))
def test_any_text_is_a_manifest_or_a_manifest_error(text: str) -> None:
    with contextlib.suppress(ManifestError):
        assert isinstance(parse_manifest(text), ComponentManifest)


@pytest.mark.parametrize("path", ["\U00018cd6.wasm", "a\u2028b.wasm", "x\u200b.wasm"])
def test_a_path_with_an_unprintable_character_is_refused(path: str) -> None:
    text = f'[component]\nname = "c"\nversion = "1"\nwasm = "{path}"\n'
    with pytest.raises(ManifestError, match="component.wasm .* not printable"):
        parse_manifest(text, path="/tmp/Component.toml")
