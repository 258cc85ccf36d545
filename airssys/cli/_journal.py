"""``airssys journal check|inspect|repair TARGET``: look at a durable component's journal
and mend it.

TARGET is a journal file, or a durable component's address (``/app/counter``), found
where a system keeps it: ``<--data-dir>/journal/<--system>/<address>.journal``
(``--data-dir`` defaults to ``$AIRSSYS_DATA_DIR`` or the XDG data home; ``--system``
is the system's name, a node's deployment name, or a cluster's name for a placed
component). Thin wrappers over :func:`airssys.durability.check_journal`,
:func:`~airssys.durability.inspect_journal` and :func:`~airssys.durability.repair_journal`.

``check`` exits 1 when the journal is damaged; ``repair`` is refused while a system
writes the journal, copies the original aside first and says what was lost.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import AirssysError

__all__ = ("journal_app",)

journal_app = typer.Typer(
    help="Check, list and repair a durable component's journal.", no_args_is_help=True
)
_err = Console(stderr=True, soft_wrap=True, highlight=False)

Target = Annotated[
    str, typer.Argument(help="A journal file, or a durable component's address (/app/counter).")
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the journals live (default: $AIRSSYS_DATA_DIR or XDG data)."
    ),
]
System = Annotated[
    str, typer.Option("--system", help="The system's name (a node's deployment name).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _journal(target: str, data_dir: Path | None, system: str) -> Path:
    from ..durability import journal_path
    from ..storage import default_data_dir

    if not target.startswith("/") or target.endswith(".journal"):
        path = Path(target)
    else:
        root = data_dir if data_dir is not None else default_data_dir(create=False)
        path = journal_path(root, system, target)
    if not path.is_file():
        raise AirssysError(
            f"no journal at {path} (give a journal file, or an address with the right "
            "--data-dir and --system)"
        )
    return path


def _seqs(seqs: tuple[int, ...]) -> str:
    return ", ".join(map(str, seqs)) if seqs else "none"


@journal_app.command("check")
def check(
    target: Target, data_dir: DataDir = None, system: System = "airssys", as_json: Json = False
) -> int:
    """Verify every record and the replay-hash chain (exit 1 when damaged)."""
    from ..durability import check_journal

    report = check_journal(_journal(target, data_dir, system))
    if as_json:
        print(json.dumps(report.as_dict()))
        return 0 if report.ok else 1
    print(f"{report.path}: {report.size} bytes, {report.records} whole records")
    print(
        f"  {report.accepted} accepted, {report.handled} handled, "
        f"{len(report.pending)} pending"
        + (f", starting at a snapshot after message {report.snapshot}" if report.snapshot else "")
    )
    for damage in report.damaged:
        print(f"  DAMAGED: {damage.size} unreadable bytes at offset {damage.offset}")
    if report.tail is not None:
        print(
            f"  a torn tail: {report.tail.size} bytes at offset {report.tail.offset} "
            "(a write cut short; cut off when the journal is next opened)"
        )
    if report.chain_breaks:
        print(f"  the replay hash breaks at messages {_seqs(report.chain_breaks)}")
    for repair in report.repairs:
        print(
            f"  repaired earlier at offset {repair.offset}: lost {_seqs(repair.lost)}; "
            f"handled again {_seqs(repair.redelivered)}"
        )
    print(f"  replay hash {report.replay_hash}")
    if report.ok:
        print("ok")
        return 0
    print(f"damaged: `airssys journal repair {report.path}` keeps every readable record")
    return 1


@journal_app.command("inspect")
def inspect(
    target: Target, data_dir: DataDir = None, system: System = "airssys", as_json: Json = False
) -> None:
    """List the records: offset, size, type, sequence numbers, what each holds."""
    from ..durability import inspect_journal

    records = inspect_journal(_journal(target, data_dir, system))
    out = sys.stdout
    for info in records:
        if as_json:
            out.write(json.dumps(info.as_dict()) + "\n")
        else:
            seqs = info.seqs
            shown = (
                "-"
                if not seqs
                else str(seqs[0])
                if len(seqs) == 1
                else f"{seqs[0]}..{seqs[-1]} ({len(seqs)})"
            )
            out.write(f"{info.offset}\t{info.size}\t{info.kind}\t{shown}\t{info.detail}\n")
    out.flush()


@journal_app.command("repair")
def repair(
    target: Target, data_dir: DataDir = None, system: System = "airssys", as_json: Json = False
) -> None:
    """Keep every readable record; mark what was lost (refused while a system writes it)."""
    from ..durability import repair_journal

    report = repair_journal(_journal(target, data_dir, system))
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    if report.backup is None:
        tail = (
            "" if report.tail_cut is None else f" (cut a torn tail of {report.tail_cut.size} bytes)"
        )
        print(f"{report.path}: nothing damaged, nothing to repair{tail}")
        return
    print(f"{report.path}: repaired; the original is at {report.backup}")
    print(f"  kept {report.kept} whole records")
    for fixed in report.repairs:
        print(f"  {fixed.size} unreadable bytes at offset {fixed.offset}")
    print(f"  messages lost (never handled again): {_seqs(report.lost)}")
    print(f"  messages whose handling record was lost (handled again): {_seqs(report.redelivered)}")
    if any(r.snapshot_lost for r in report.repairs):
        print("  the snapshot at the start was unreadable: the state before it is lost")
    print("the component replays what is left at its next start")
