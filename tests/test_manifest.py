"""Component.toml: the schema, and errors that name file, key and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from airssys.errors import ManifestError
from airssys.manifest import load_manifest, parse_manifest, parse_size

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
