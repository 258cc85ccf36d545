"""Durable components: a journal, deterministic replay, state that survives crashes.

Opt in per component with ``[durability] journal = true`` in its Component.toml
(or ``durability = {...}`` where it is spawned or deployed). See :mod:`._durable`
for what is guaranteed and what is not, and docs/durability.md.
"""

from ..runtime import ReplayDivergence as ReplayDivergence
from ._durable import Durable as Durable
from ._durable import Replayed as Replayed
from ._durable import journal_path as journal_path
from ._journal import MAGIC as JOURNAL_MAGIC
from ._journal import Journal as Journal
from ._journal import JournalCorrupt as JournalCorrupt
from ._journal import JournalError as JournalError
from ._journal import JournalLocked as JournalLocked
from ._tools import JournalReport as JournalReport
from ._tools import RecordInfo as RecordInfo
from ._tools import RepairReport as RepairReport
from ._tools import check_journal as check_journal
from ._tools import inspect_journal as inspect_journal
from ._tools import repair_journal as repair_journal

__all__ = (
    "JOURNAL_MAGIC",
    "Durable",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalLocked",
    "JournalReport",
    "RecordInfo",
    "RepairReport",
    "ReplayDivergence",
    "Replayed",
    "check_journal",
    "inspect_journal",
    "journal_path",
    "repair_journal",
)
