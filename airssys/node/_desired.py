"""What ``update`` and ``rollback`` decided, kept in the data directory so that a node
started again serves what it served when it stopped.

``<data dir>/desired/<node name>.json`` (0600, replaced atomically), for each address
that was updated:

* ``base``: what the deployment named for the address (its ``name@version`` or path)
  when it was first updated;
* ``stack``: the versions a rollback goes back through, the deployment's own first,
  the one serving last (an update pushes, a rollback pops);
* ``log``: every switch, in order (update, rollback, automatic rollback), kept across
  rollbacks: what ``airssys versions`` shows, the serving row marked.

At start, an address whose deployment entry still names ``base`` is served by the top
of its stack (a package from the store); if the deployment names something else now,
the deployment wins, the record is dropped and a warning says so.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._logging import get_logger
from ..errors import NodeError

__all__ = ("DesiredState", "Row")

_log = get_logger("airssys.node")


@dataclass(slots=True)
class Row:
    """One version that served an address."""

    package: str | None
    """``name@version`` in the store; None: the deployment's component given by path."""
    version: str
    digest: str
    since: float = field(default_factory=time.time)
    how: str = "deployment"
    """How it came to serve: deployment, update, rollback or automatic rollback."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "version": self.version,
            "digest": self.digest,
            "since": self.since,
            "how": self.how,
        }

    @classmethod
    def of(cls, value: dict[str, Any]) -> Row:
        return cls(
            value["package"],
            str(value["version"]),
            str(value["digest"]),
            float(value["since"]),
            str(value.get("how", "update")),
        )


_LOG_KEPT = 50


@dataclass(slots=True)
class _Address:
    base: str
    stack: list[Row]
    log: list[Row]


class DesiredState:
    """The decisions of one node (by name) in one data directory."""

    def __init__(self, data_dir: Path, node: str) -> None:
        self.path = data_dir / "desired" / f"{node}.json"
        self._addresses: dict[str, _Address] = {}
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise NodeError(f"cannot read the node's desired state {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
            for address, entry in data["addresses"].items():
                stack = [Row.of(row) for row in entry["stack"]]
                log = [Row.of(row) for row in entry["log"]]
                if stack:
                    self._addresses[address] = _Address(str(entry["base"]), stack, log)
        except (ValueError, KeyError, TypeError) as exc:
            raise NodeError(
                f"the node's desired state {self.path} is not readable ({exc!r}); move it "
                "aside to start from the deployment's versions"
            ) from exc

    def _save(self) -> None:
        data = {
            "format": 1,
            "addresses": {
                address: {
                    "base": entry.base,
                    "stack": [row.as_dict() for row in entry.stack],
                    "log": [row.as_dict() for row in entry.log[-_LOG_KEPT:]],
                }
                for address, entry in self._addresses.items()
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".desired-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- at start -------------------------------------------------------------------------

    def serving(self, address: str, base: str) -> Row | None:
        """The version to serve ``address`` with when an update decided one and the
        deployment still names ``base`` (None: the deployment's own). A deployment
        that changed since wins, and says so."""
        entry = self._addresses.get(address)
        if entry is None:
            return None
        if entry.base != base:
            _log.warning(
                "the deployment changed since this address was updated: serving the "
                "deployment's version",
                address=address,
                deployment=base,
                updated_from=entry.base,
                was_serving=entry.stack[-1].package,
            )
            del self._addresses[address]
            self._save()
            return None
        return entry.stack[-1] if len(entry.stack) > 1 else None

    # --- decisions ------------------------------------------------------------------------

    def log(self, address: str) -> list[Row]:
        entry = self._addresses.get(address)
        return list(entry.log) if entry is not None else []

    def previous(self, address: str) -> Row | None:
        """What a rollback goes back to, as recorded."""
        entry = self._addresses.get(address)
        return entry.stack[-2] if entry is not None and len(entry.stack) > 1 else None

    def updated(self, address: str, base: str, first: Row, now: Row) -> None:
        """``address`` switched to ``now`` (``first``: the deployment's version, for an
        address updated for the first time)."""
        entry = self._addresses.get(address)
        if entry is None:
            entry = self._addresses[address] = _Address(base, [first], [first])
        now.how = "update"
        entry.stack.append(now)
        entry.log.append(now)
        self._save()

    def rolled_back(self, address: str, *, automatic: bool = False) -> Row | None:
        """A rollback: the top of the stack goes; the row now serving (None when
        nothing was recorded for the address)."""
        entry = self._addresses.get(address)
        if entry is None or len(entry.stack) < 2:
            return None
        entry.stack.pop()
        back = entry.stack[-1]
        row = Row(
            back.package,
            back.version,
            back.digest,
            how="automatic rollback" if automatic else "rollback",
        )
        entry.log.append(row)
        self._save()
        return row
