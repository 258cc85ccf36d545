"""The trust store: the public keys whose signatures make a component *trusted*.

A directory (default ``<config>/trusted-keys/``, where ``<config>`` is
``$AIRSSYS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/airssys``, else
``~/.config/airssys``), created mode 0700. Each key is a file: :meth:`TrustStore.add`
writes ``<key id>.pub`` (wasmsign2's raw format) and ``<key id>.json`` (its name and
when and from where it was added). A key file dropped in by hand (any name, any
format :func:`~airssys.lifecycle._keys.parse_public_key` reads) is trusted too; its
name is its file's stem.

The store is refused (:class:`TrustStoreError`) when its directory is writable by
other users or owned by someone else: whoever can write it decides what is trusted.
A file in it that is not a public key is skipped with a warning (skipping can only
make less trusted, never more).
"""

from __future__ import annotations

import builtins
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .._dirs import airssys_dir, make_private_dir, write_atomic
from .._logging import get_logger
from ..errors import TrustStoreError as TrustStoreError
from ._keys import (
    KeyFormatError,
    PublicKey,
    encode_public_key,
    key_id,
    load_public_key,
    parse_public_key,
)

__all__ = ("TrustStore", "TrustStoreError", "TrustedKey", "default_config_dir")

_log = get_logger("airssys.lifecycle.trust")
TRUSTED_KEYS: Final = "trusted-keys"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_MIN_PREFIX: Final = 8


def default_config_dir(*, create: bool = False) -> Path:
    """``$AIRSSYS_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/airssys``, else
    ``~/.config/airssys``; created (mode 0700) when ``create`` is true."""
    path = airssys_dir("config")
    if create:
        make_private_dir(
            path, lambda exc: TrustStoreError(f"cannot create the config directory {path}: {exc}")
        )
    return path


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One trusted public key: its id (:func:`~airssys.lifecycle._keys.key_id`), the
    name it was given (or None), its file, and when it was added (seconds since the
    epoch; None for a file put there by hand)."""

    key_id: str
    name: str | None
    path: Path
    public_key: PublicKey
    added: float | None = None
    source: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.key_id})" if self.name else self.key_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "path": str(self.path),
            "added": self.added,
            "source": self.source,
            "public_key": encode_public_key(self.public_key)[1:].hex(),
        }


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"bad key name {name!r:.80}: 1 to 64 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return name


class TrustStore:
    """The trusted public keys in ``directory`` (default: ``<config>/trusted-keys``)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = (
            Path(directory) if directory is not None else default_config_dir() / TRUSTED_KEYS
        )

    def __repr__(self) -> str:
        return f"TrustStore({str(self.directory)!r})"

    # --- safety -------------------------------------------------------------------

    def _check_directory(self) -> bool:
        """False when the directory does not exist (an empty store); raises when it is
        not a directory or other users could change what it trusts."""
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TrustStoreError(f"cannot read the trust store {self.directory}: {exc}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise TrustStoreError(f"the trust store {self.directory} is not a directory")
        if st.st_mode & 0o022:
            raise TrustStoreError(
                f"the trust store {self.directory} is writable by other users "
                f"(mode {stat.S_IMODE(st.st_mode):o}): refusing to trust its keys; "
                f"chmod 700 {self.directory}"
            )
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise TrustStoreError(
                f"the trust store {self.directory} belongs to another user (uid {st.st_uid}): "
                "refusing to trust its keys"
            )
        return True

    def _create(self) -> None:
        make_private_dir(
            self.directory,
            lambda exc: TrustStoreError(f"cannot create the trust store {self.directory}: {exc}"),
        )
        self._check_directory()

    # --- reading --------------------------------------------------------------------

    def _files(self) -> Iterator[Path]:
        if not self._check_directory():
            return
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".") or path.suffix in (".json", ".tmp"):
                continue
            if path.is_file():
                yield path

    def _metadata(self, path: Path) -> dict[str, Any]:
        meta = path.with_suffix(".json")
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _log.warning(
                "trust store: unreadable metadata, ignored", file=str(meta), error=str(exc)
            )
            return {}
        return data if isinstance(data, dict) else {}

    def list(self) -> list[TrustedKey]:
        """Every trusted key, once each (by key id), sorted by name then id."""
        found: dict[str, TrustedKey] = {}
        for path in self._files():
            try:
                public_key = load_public_key(path)
            except KeyFormatError as exc:
                _log.warning(
                    "trust store: not a public key, skipped", file=str(path), error=str(exc)
                )
                continue
            kid = key_id(public_key)
            if kid in found:
                continue
            meta = self._metadata(path)
            name = meta.get("name") if isinstance(meta.get("name"), str) else None
            if name is None and path.stem != kid:
                name = path.stem
            added = meta.get("added")
            source = meta.get("source")
            found[kid] = TrustedKey(
                key_id=kid,
                name=name,
                path=path,
                public_key=public_key,
                added=float(added) if isinstance(added, int | float) else None,
                source=source if isinstance(source, str) else None,
            )
        return sorted(found.values(), key=lambda k: (k.name is None, k.name or "", k.key_id))

    def keys(self) -> builtins.list[PublicKey]:
        """The trusted public keys."""
        return [k.public_key for k in self.list()]

    def find(self, key_id_or_name: str) -> TrustedKey:
        """The key with that id, else that name, else the one key whose id starts with
        it (at least 8 hex digits); :class:`TrustStoreError` when there is none."""
        wanted = key_id_or_name.strip()
        keys = self.list()
        for match in (
            [k for k in keys if k.key_id == wanted.lower()],
            [k for k in keys if k.name == wanted],
        ):
            if match:
                return match[0]
        if len(wanted) >= _MIN_PREFIX:
            prefixed = [k for k in keys if k.key_id.startswith(wanted.lower())]
            if len(prefixed) == 1:
                return prefixed[0]
            if prefixed:
                ids = ", ".join(k.key_id for k in prefixed)
                raise TrustStoreError(f"{wanted!r} matches more than one trusted key: {ids}")
        raise TrustStoreError(f"no trusted key has the id or name {wanted!r:.80}")

    def __contains__(self, public_key: object) -> bool:
        if not isinstance(public_key, PublicKey):
            return False
        return any(k.key_id == key_id(public_key) for k in self.list())

    # --- changing -------------------------------------------------------------------

    def add(
        self,
        public_key: str | os.PathLike[str] | PublicKey,
        *,
        name: str | None = None,
    ) -> str:
        """Trust a public key (a key file, or a key); returns its key id. Adding a key
        already trusted only renames it when ``name`` is given. A name must be unique."""
        source: str | None = None
        if isinstance(public_key, PublicKey):
            key = public_key
        else:
            source = str(Path(public_key).resolve())
            key = load_public_key(public_key)
        if name is not None:
            check_name(name)
        kid = key_id(key)
        self._create()
        existing = self.list()
        for other in existing:
            if name is not None and other.name == name and other.key_id != kid:
                raise TrustStoreError(
                    f"the name {name!r} is taken by the trusted key {other.key_id}"
                )
        already = next((k for k in existing if k.key_id == kid), None)
        if already is not None:
            if name is not None and name != already.name:
                meta = self._metadata(already.path) or {
                    "added": already.added,
                    "source": already.source,
                }
                meta["name"] = name
                self._write(already.path.with_suffix(".json"), _json(meta))
            return kid
        key_path = self.directory / f"{kid}.pub"
        self._write(key_path, encode_public_key(key))
        meta = {"name": name, "added": time.time(), "source": source}
        self._write(key_path.with_suffix(".json"), _json(meta))
        return kid

    def remove(self, key_id_or_name: str) -> TrustedKey:
        """Stop trusting a key (by id, name or unique id prefix); returns what was
        removed. Every file in the store holding that key goes."""
        target = self.find(key_id_or_name)
        for path in list(self._files()):
            try:
                same = (
                    key_id(parse_public_key(path.read_bytes(), source=str(path))) == target.key_id
                )
            except (KeyFormatError, OSError):
                continue
            if same:
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
        return target

    def _write(self, path: Path, data: bytes) -> None:
        """Atomically (temp file + rename) in the store."""
        write_atomic(path, data, 0o644)


def _json(meta: dict[str, Any]) -> bytes:
    return (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
