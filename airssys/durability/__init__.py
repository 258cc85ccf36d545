"""Durable components: a journal, deterministic replay, state that survives crashes.

Opt in per component with ``[durability] journal = true`` in its Component.toml
(or ``durability = {...}`` where it is spawned or deployed). See :mod:`._durable`
for what is guaranteed and what is not, and docs/durability.md.
"""

from ..runtime import ReplayDivergence as ReplayDivergence
from ._durable import Durable as Durable
from ._durable import journal_path as journal_path
from ._journal import Journal as Journal
from ._journal import JournalError as JournalError

__all__ = (
    "Durable",
    "Journal",
    "JournalError",
    "ReplayDivergence",
    "journal_path",
)
