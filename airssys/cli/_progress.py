"""Progress on stderr while a command waits (compile, build, install, update's steps).

Where stderr is a terminal: a Rich spinner per phase, ticked off with its time. In a
pipe or a file: a line per phase that lasts over a second (``echo: compile...``, then
``echo: compile 12.3 s (18.2 MB; not in the compile cache yet)``); with ``every``
(update, rollback) every phase's end, timed. With ``--json`` (or ``--json-logs``):
one JSON object per event. ``--quiet``: nothing.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from .._progress import LineReporter, ProgressEvent, describe, listen
from ._options import Settings

__all__ = ("Report", "reporting")

Mode = Literal["off", "rich", "lines", "json"]
_err = Console(stderr=True, soft_wrap=True)
_write_lock = threading.Lock()


def _line(text: str, _event: ProgressEvent | None = None) -> None:
    with _write_lock:
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed: progress is not worth failing for
            pass


class Report:
    """Shows progress events (local ones, and a node's handed to :meth:`remote`)."""

    def __init__(self, mode: Mode, *, every: bool = False) -> None:
        self.mode = mode
        self._lines = LineReporter(_line, every=every)
        self._progress: Progress | None = None
        self._tasks: dict[int, TaskID] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "off":
            return
        if self.mode == "json":
            _line(json.dumps(event.as_dict()))
        elif self.mode == "lines":
            self._lines(event)
        else:
            self._rich(event)

    def remote(self, data: dict[str, Any]) -> None:
        """An event a node sent (``ProgressEvent.as_dict``)."""
        self(ProgressEvent.from_dict(data))

    def _rich(self, event: ProgressEvent) -> None:
        """A spinner per phase, live only while a phase runs (stdout stays the
        command's own between phases); the ticked-off phases stay on the screen."""
        progress = self._progress
        if progress is None:
            return
        with self._lock:
            if event.state == "start":
                if not self._tasks:
                    progress.start()
                self._tasks[event.key] = progress.add_task(describe(event), total=None)
                return
            task = self._tasks.pop(event.key, None)
            if task is None:  # an end whose start came before we listened
                if not self._tasks:
                    progress.start()
                task = progress.add_task("", total=None)
            mark = "failed: " if event.state == "failed" else ""
            progress.update(task, description=mark + describe(event), total=1, completed=1)
            if not self._tasks:
                progress.stop()
                for done in list(progress.task_ids):
                    progress.remove_task(done)

    @contextmanager
    def shown(self) -> Iterator[None]:
        if self.mode == "rich":
            self._progress = Progress(
                SpinnerColumn(finished_text="✓"),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=_err,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
        try:
            yield
        finally:
            self._lines.close()
            with self._lock:
                if self._progress is not None and self._tasks:
                    self._progress.stop()
                self._progress = None


def _mode(json_out: bool) -> Mode:
    if Settings.quiet:
        return "off"
    if json_out or Settings.json_logs:
        return "json"
    return "rich" if _err.is_terminal else "lines"


@contextmanager
def reporting(*, json_out: bool = False, every: bool = False) -> Iterator[Report]:
    """Show the progress of this process's waits (and the node's handed to
    ``report.remote``) until the block ends."""
    report = Report(_mode(json_out), every=every)
    stop: Callable[[], None] = listen(report)
    try:
        with report.shown():
            yield report
    finally:
        stop()
