"""``airssys keygen|sign|verify`` and ``airssys config trust``, run in subprocesses as a
user runs them, with a private config directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from tests.conftest import FIXTURES, ROOT

# `python -m airssys`, with the commands registered if the root app does not have them
# yet (they are wired into airssys/cli/__init__.py by the lead)
_RUNNER = """
import sys
from airssys import cli
from airssys.cli import _keys
if not any(c.name == "keygen" for c in cli.app.registered_commands):
    _keys.register(cli.app)
cli.main(sys.argv[1:])
"""
MANIFEST = ROOT / "components" / "echo" / "Component.toml"


class Cli:
    """Runs ``airssys ARGS`` in a subprocess, or (``in_process``) through
    ``airssys.cli.main`` in this process: the same entry point and error handling,
    without paying for a fresh interpreter on every call."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        in_process: bool = False,
        monkeypatch: pytest.MonkeyPatch | None = None,
        capfd: pytest.CaptureFixture[str] | None = None,
    ) -> None:
        self.cwd = tmp_path
        self.config = tmp_path / "config"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRSSYS_")}
        self.env["AIRSSYS_CONFIG_DIR"] = str(self.config)
        self.in_process = in_process
        self.capfd = capfd
        if in_process:
            assert monkeypatch is not None and capfd is not None
            for name in os.environ:
                if name.startswith("AIRSSYS_"):
                    monkeypatch.delenv(name)
            monkeypatch.setenv("AIRSSYS_CONFIG_DIR", str(self.config))
            monkeypatch.chdir(tmp_path)

    def _run_here(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        from airssys import cli
        from airssys.cli import _keys

        if not any(c.name == "keygen" for c in cli.app.registered_commands):
            _keys.register(cli.app)
        assert self.capfd is not None
        self.capfd.readouterr()
        with pytest.raises(SystemExit) as exit_:
            cli.main(args)
        out, err = self.capfd.readouterr()
        return subprocess.CompletedProcess(args, int(exit_.value.code or 0), out, err)

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        if self.in_process:
            done = self._run_here(list(args))
        else:
            done = subprocess.run(
                [sys.executable, "-c", _RUNNER, *args],
                capture_output=True,
                text=True,
                env=self.env,
                cwd=self.cwd,
                timeout=120,
                check=False,
            )
        assert done.returncode == code, (done.stdout, done.stderr)
        return done

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def sub(tmp_path: Path) -> Cli:
    """In a subprocess, as a user runs it."""
    return Cli(tmp_path)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Cli:
    """Through airssys.cli.main, in this process."""
    return Cli(tmp_path, in_process=True, monkeypatch=monkeypatch, capfd=capfd)


@pytest.fixture
def wasm(tmp_path: Path) -> Path:
    path = tmp_path / "echo.wasm"
    path.write_bytes(wasmtime.wat2wasm((FIXTURES / "echo.wat").read_text()))
    return path


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_keygen_writes_0600_and_refuses_to_overwrite(sub: Cli, tmp_path: Path) -> None:
    cli = sub
    made = cli.json("keygen", "mine.key")
    assert isinstance(made, dict)
    private, public = tmp_path / "mine.key", tmp_path / "mine.key.pub"
    assert made == {
        "private_key": "mine.key",
        "public_key": "mine.key.pub",
        "key_id": made["key_id"],
    }
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert len(private.read_bytes()) == 65 and len(public.read_bytes()) == 33
    before = private.read_bytes()
    line = one_error_line(cli("keygen", "mine.key", code=1))
    assert "mine.key exists: refusing to overwrite a key file" in line
    assert private.read_bytes() == before


@pytest.mark.timeout(300)  # CLI subprocesses: a fresh interpreter each
def test_sign_trust_verify_tamper_in_a_subprocess(sub: Cli, wasm: Path, tmp_path: Path) -> None:
    kid = sub.json("keygen", "k")["key_id"]
    sub("sign", str(wasm), "--key", "k", "--manifest", str(MANIFEST))
    assert sub.json("verify", str(wasm))["trust"] == "unknown"
    sub("config", "trust", "add", "k.pub", "--name", "release")
    out = sub("verify", str(wasm), "--manifest", str(MANIFEST), "--require-trusted").stdout
    assert out.startswith(f"trusted: {wasm} signed by release ({kid})")
    data = bytearray(wasm.read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "tampered.wasm").write_bytes(data)
    line = one_error_line(sub("verify", "tampered.wasm", code=1))
    assert line == (
        f"error: tampered.wasm: the module's contents differ from what trusted key {kid} "
        "signed (tampered, or changed after signing)"
    )


def test_keygen_default_path(cli: Cli) -> None:
    out = cli("keygen").stdout
    key = cli.config / "keys" / "signing.key"
    assert str(key) in out and "airssys config trust add" in out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_sign_then_verify_unknown_then_trusted(cli: Cli, wasm: Path) -> None:
    kid = cli.json("keygen", "k")["key_id"]

    signed = cli.json("sign", str(wasm), "--key", "k", "--manifest", str(MANIFEST))
    assert isinstance(signed, dict)
    assert signed["key_id"] == kid and signed["output"] == str(wasm)
    assert wasm.read_bytes()[8:21] == b"\x00\x81\x01\x09signature"  # first section

    unknown = cli.json("verify", str(wasm))
    assert unknown == {
        "file": str(wasm),
        "valid": True,
        "signed": True,
        "signer": None,
        "signer_name": None,
        "trust": "unknown",
        "reason": f"signed by a key not in the trust store (key id {kid})",
        "key_ids": [kid],
        "manifest_digest": signed["manifest_digest"],
        "package_digest": None,
        "legacy_signer": None,
    }
    out = cli("verify", str(wasm)).stdout
    assert out.startswith("unknown signer: ")
    cli("verify", str(wasm), "--require-trusted", code=1)

    added = cli.json("config", "trust", "add", "k.pub", "--name", "release")
    assert isinstance(added, dict) and added["key_id"] == kid
    trusted = cli.json("verify", str(wasm), "--manifest", str(MANIFEST), "--require-trusted")
    assert isinstance(trusted, dict)
    assert (trusted["trust"], trusted["signer"], trusted["signer_name"]) == (
        "trusted",
        kid,
        "release",
    )
    assert cli("verify", str(wasm)).stdout.startswith(f"trusted: {wasm} signed by release ({kid})")
    # --key instead of the store
    other = cli.json("keygen", "other")["key_id"]
    assert cli.json("verify", str(wasm), "--key", "other.pub")["trust"] == "unknown"
    assert other != kid


def test_tampered_and_wrong_manifest_exit_1_with_the_reason(
    cli: Cli, wasm: Path, tmp_path: Path
) -> None:
    cli("keygen", "k")
    cli("config", "trust", "add", "k.pub")
    cli("sign", str(wasm), "-k", "k", "-m", str(MANIFEST), "-o", "signed.wasm")
    assert wasm.read_bytes()[:9] != (tmp_path / "signed.wasm").read_bytes()[:9]  # not in place

    data = bytearray((tmp_path / "signed.wasm").read_bytes())
    data[-40] ^= 1
    (tmp_path / "tampered.wasm").write_bytes(data)
    line = one_error_line(cli("verify", "tampered.wasm", code=1))
    assert line.startswith(
        "error: tampered.wasm: the module's contents differ from what trusted key"
    )
    failed = cli.json("verify", "tampered.wasm", code=1)
    assert isinstance(failed, dict) and failed["valid"] is False
    assert "contents differ" in failed["error"]

    other = tmp_path / "Other.toml"
    other.write_text('[component]\nname = "other"\nversion = "0.1.0"\nwasm = "x.wasm"\n')
    line = one_error_line(cli("verify", "signed.wasm", "--manifest", str(other), code=1))
    assert line == "error: signed.wasm: the manifest does not match the one that was signed"


def test_unsigned(cli: Cli, wasm: Path) -> None:
    assert cli.json("verify", str(wasm))["trust"] == "unknown"
    assert cli("verify", str(wasm)).stdout.startswith("unsigned: ")
    line = one_error_line(cli("verify", str(wasm), "--require-trusted", code=1))
    assert "is not signed by a trusted key (unsigned)" in line


def test_detached(cli: Cli, wasm: Path, tmp_path: Path) -> None:
    cli("keygen", "k")
    cli("config", "trust", "add", "k.pub")
    original = wasm.read_bytes()
    cli("sign", str(wasm), "-k", "k", "--detached", "echo.sig")
    assert wasm.read_bytes() == original  # untouched without a manifest
    assert cli.json("verify", str(wasm), "-S", "echo.sig")["trust"] == "trusted"
    assert cli.json("verify", str(wasm))["signed"] is False
    # with a manifest the binary gains the binding section
    cli("sign", str(wasm), "-k", "k", "-S", "echo.sig", "-m", str(MANIFEST))
    assert wasm.read_bytes().startswith(original)
    result = cli.json("verify", str(wasm), "-S", "echo.sig", "-m", str(MANIFEST))
    assert result["trust"] == "trusted"


def test_trust_list_and_remove(cli: Cli) -> None:
    assert cli.json("config", "trust", "list") == []
    assert "no trusted keys" in cli("config", "trust", "list").stderr
    kid = cli.json("keygen", "k")["key_id"]
    cli("config", "trust", "add", "k.pub", "--name", "ci")
    listed = cli.json("config", "trust", "list")
    assert isinstance(listed, list) and [k["key_id"] for k in listed] == [kid]
    assert kid in cli("config", "trust", "list").stdout
    assert stat.S_IMODE((cli.config / "trusted-keys").stat().st_mode) == 0o700
    assert cli("config", "trust", "remove", "ci").stdout.startswith("removed ci")
    line = one_error_line(cli("config", "trust", "remove", "ci", code=1))
    assert line == "error: no trusted key has the id or name 'ci'"


def test_bad_inputs_are_one_line_errors(cli: Cli, wasm: Path, tmp_path: Path) -> None:
    line = one_error_line(cli("sign", str(wasm), code=1))
    assert "no signing key at" in line and "airssys keygen" in line
    cli("keygen", "k")
    assert "is a public key" in one_error_line(cli("sign", str(wasm), "-k", "k.pub", code=1))
    (tmp_path / "text.wat").write_text("(module)")
    line = one_error_line(cli("sign", "text.wat", "-k", "k", code=1))
    assert "not a WebAssembly binary" in line
    assert "no WebAssembly binary at" in one_error_line(cli("verify", "missing.wasm", code=1))
    assert "bad key name" in one_error_line(
        cli("config", "trust", "add", "k.pub", "--name", "a b", code=1)
    )


@pytest.mark.parametrize(
    "command",
    [["keygen"], ["sign"], ["verify"], ["config"], ["config", "trust"], ["config", "trust", "add"]],
)
def test_help(cli: Cli, command: list[str]) -> None:
    out = cli(*command, "--help").stdout
    assert "Usage:" in out
