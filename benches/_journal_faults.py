"""Durable journals at their worst case, measured from outside (issue 21).

A real node (``python -m airssys.cli serve DEPLOYMENT`` in a subprocess) runs
components/fixtures/counter.wat as a durable component (``durability = { journal =
true }``; it replies with how many messages it has handled). The bench talks to the
node's control socket with its own client (:class:`Wire`: newline-delimited JSON over
the Unix socket, requests pipelined, nothing from ``airssys``), and counts what *it*
sent and what the node acknowledged (``{"ok": true, "result": {"queued": true}}``).
After a restart, one ``ask`` reads the count; an acknowledged message that is not in
it was lost. The project's own counters are never read.

* ``corruption``: N sends acknowledged, SIGTERM (drained), one byte of the journal
  flipped; started again. Lost without an error (the node started, the ask answered)
  is ``silent_loss``; a start that fails, or an ask answered with an error, is
  ``detected``. The headline flip is the byte at half the file's length; the same is
  done at chosen fields of the middle records (read with the bench's own parser of the
  documented frame ``[u32 length][u8 type][body][u32 crc32]``): an ``A`` record's length
  (high and low byte), type, body and checksum, an ``H`` record's body. Each detected
  case is then repaired (``airssys journal repair FILE --json``) and started again:
  ``unreported`` counts acknowledged messages lost and not in the repair's ``lost``
  list. Last, the file cut to half its length: a torn tail by construction (nothing
  whole after the cut), which the journal may cut off; the figures say what that
  costs and whether the log names the file. A reply that is not a count, with no
  error, is ``wrong_reply`` (counted in ``wrong_replies``).
* ``diskfull``: the data dir on a small tmpfs (mounted here; root only, else skipped
  with the reason), a filler file takes most of it; sends until the node refuses them
  (the journal's ENOSPC), then the filler is deleted and more are sent; SIGTERM, a
  restart, the count. ``acked_lost``: acknowledged and missing.
* ``startup``: a journal of P handled messages (replay takes a while); the node is
  started again and the bench sends from the moment the control socket accepts a
  connection; once 200 sends were acknowledged before the node said it was ready,
  kill -9 (if it gets ready first: 0.2 s after); a restart, the count.
  ``acked_lost``: acknowledged and missing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benches._common import FIXTURES, ROOT

ADDRESS = "/app/counter"
COUNTER = FIXTURES / "counter.wat"
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
MAGIC = b"AIRSJRN1"
HEAD = struct.Struct(">IB")
CRC = 4


# --- the bench's own client -------------------------------------------------------------


class Wire:
    """One connection to a node's control socket: JSON lines, requests pipelined."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def write(self, requests: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in requests)
        self.sock.sendall(data)

    def read(self) -> dict[str, Any]:
        line = self.file.readline()
        if not line:
            raise ConnectionError("the node closed the connection")
        reply = json.loads(line)
        assert isinstance(reply, dict), reply
        return reply

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self.write([{"op": op, **fields}])
        return self.read()


SEND: dict[str, Any] = {"op": "send", "address": ADDRESS, "message": "1"}


def acknowledged(reply: dict[str, Any]) -> bool:
    result = reply.get("result")
    return bool(reply.get("ok")) and isinstance(result, dict) and result.get("queued") is True


@dataclass
class Tally:
    """What the bench sent and what came back."""

    sent: int = 0
    acked: int = 0
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None

    def note(self, reply: dict[str, Any]) -> bool:
        if acknowledged(reply):
            self.acked += 1
            return True
        self.refused += 1
        kind = str(reply.get("type", "?"))
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if self.first_error is None:
            self.first_error = f"{kind}: {reply.get('error')}"
        return False


def send_many(
    wire: Wire,
    n: int,
    tally: Tally,
    *,
    window: int = 64,
    stop_after_refusals: int | None = None,
) -> None:
    """Up to ``n`` sends, ``window`` in flight; every reply read and counted. With
    ``stop_after_refusals``, stops once that many replies in a row were refusals."""
    in_flight = 0
    streak = 0
    left = n
    while left or in_flight:
        if left and in_flight < window and (streak == 0 or in_flight == 0):
            # after a refusal, one at a time until one is acknowledged again
            batch = min(left, window - in_flight) if streak == 0 else 1
            wire.write([SEND] * batch)
            tally.sent += batch
            left -= batch
            in_flight += batch
        reply = wire.read()
        in_flight -= 1
        streak = 0 if tally.note(reply) else streak + 1
        if stop_after_refusals is not None and streak >= stop_after_refusals:
            left = 0


def count_of(reply: dict[str, Any]) -> int:
    """The counter's reply to an ask: a u32 (little-endian), how many it handled."""
    value = reply["result"]["value"]
    raw = base64.b64decode(value["$bytes"]) if isinstance(value, dict) else b""
    if len(raw) != 4:
        raise WrongReply(f"the counter answered {str(value)[:200]!r}, not a u32")
    return int(struct.unpack("<I", raw)[0])


class WrongReply(Exception):
    """The component answered, but not with a count (nothing reported an error)."""


# --- a node in a subprocess --------------------------------------------------------------


def deployment(where: Path, data_dir: Path, name: str, supervisor: str = "") -> Path:
    path = where / f"{name}.toml"
    path.write_text(
        f'[node]\nname = "{name}"\nrun-dir = "{where / "run"}"\n'
        f'data-dir = "{data_dir}"\nstorage = "memory"\nshutdown-timeout = 60\n\n'
        f'[[supervisor]]\nname = "app"\n{supervisor}\n'
        '[[supervisor.component]]\nid = "counter"\n'
        f'manifest = "{COUNTER}"\nmailbox = 1000000\n'
        'durability = { journal = true, fsync = "batch" }\n'
    )
    return path


class Node:
    """``airssys serve`` in a subprocess; its stderr kept in a file."""

    def __init__(self, path: Path, run: int) -> None:
        self.run_dir = path.parent / "run"
        self.socket = self.run_dir / "control.sock"
        self.stderr_path = path.with_suffix(f".{run}.stderr")
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "airssys.cli", "serve", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=ROOT,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def ready(self) -> bool:
        """Whether the node answers ``ping`` with ready: true (False while it starts)."""
        try:
            with Wire(self.socket, timeout=10) as wire:
                reply = wire.request("ping")
        except (OSError, ConnectionError, ValueError):
            return False
        return bool(reply.get("ok") and reply["result"].get("ready"))

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """True once ready; False if the process exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.ready():
                return True
            time.sleep(0.02)
        raise TimeoutError(f"the node was not ready in {timeout} s:\n{self.stderr[-2000:]}")

    def stop(self) -> int:
        """SIGTERM (the node drains its mailboxes), a kill if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def journal_file(data_dir: Path, name: str) -> Path:
    """Where the docs say the journal is: <data dir>/journal/<system>/<address>.journal."""
    found = sorted((data_dir / "journal" / name).rglob("*.journal"))
    if len(found) != 1:
        raise AssertionError(f"expected one journal under {data_dir}, found {found}")
    return found[0]


@dataclass
class Restart:
    """What a start after the damage showed."""

    started: bool
    count: int | None  # the counter's reply to one ask (None: no answer)
    error: str | None  # the start's failure or the ask's error
    stderr: str  # the node's whole stderr (its log)
    wrong: str | None = None  # a reply that is not a count, with no error

    @property
    def last_line(self) -> str | None:
        lines = self.stderr.strip().splitlines()
        return lines[-1][-800:] if lines and not self.started else None


def restart_and_count(path: Path, run: int) -> Restart:
    """Start the node, ask the counter once, stop it."""
    node = Node(path, run)
    started, count, error, wrong = False, None, None, None
    try:
        started = node.wait_ready()
        if not started:
            error = f"exit {node.proc.returncode}"
        else:
            with Wire(node.socket) as wire:
                reply = wire.request("ask", address=ADDRESS, message="1", timeout=120)
            if not reply.get("ok"):
                error = f"{reply.get('type')}: {reply.get('error')}"
            else:
                try:
                    count = count_of(reply)
                except WrongReply as exc:
                    wrong = str(exc)
    finally:
        node.stop()
    return Restart(started, count, error, node.stderr, wrong)


def missing(expected: int, restart: Restart) -> int | None:
    """Acknowledged messages not in the count (the ask itself is one of the count)."""
    if restart.count is None:
        return None
    return max(0, expected - (restart.count - 1))


# --- the journal, read with the documented frame ------------------------------------------


def frames(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, type) of each whole frame after the magic."""
    out: list[tuple[int, int, str]] = []
    at = len(MAGIC)
    while at + HEAD.size <= len(data):
        length, kind = HEAD.unpack_from(data, at)
        end = at + HEAD.size + length + CRC
        if end > len(data):
            break
        out.append((at, length, chr(kind)))
        at = end
    return out


def flip_points(data: bytes) -> dict[str, int]:
    """Byte offsets to flip: half the file; then fields of the first ``A`` (accepted)
    record from half the file on (its length's high and low bytes, its type, its body,
    its checksum) and the body of the first ``B`` (handled batch) record from there."""
    middle = len(data) // 2
    points = {"middle_byte": middle}
    later = [f for f in frames(data) if f[0] >= middle]
    accepted = next((f for f in later if f[2] == "A"), None)
    if accepted is not None:
        at, length, _ = accepted
        points["A_length_high"] = at
        points["A_length_low"] = at + 3
        points["A_type"] = at + 4
        points["A_body"] = at + HEAD.size + length // 2
        points["A_crc"] = at + HEAD.size + length + 1
    handled = next((f for f in later if f[2] == "B"), None)
    if handled is not None:
        points["B_body"] = handled[0] + HEAD.size + handled[1] // 2
    return points


def accepted_after(data: bytes, offset: int) -> int:
    """How many ``A`` records start at or after ``offset`` (or span it)."""
    return sum(
        1
        for at, length, kind in frames(data)
        if kind == "A" and at + HEAD.size + length + CRC > offset
    )


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0xFF]))


# --- the scenarios ------------------------------------------------------------------------


def corruption(where: Path, n: int) -> dict[str, Any]:
    name = "corrupt"
    data_dir = where / "data"
    path = deployment(where, data_dir, name)
    node = Node(path, 0)
    tally = Tally()
    try:
        if not node.wait_ready():
            raise AssertionError(f"the node did not start:\n{node.stderr[-2000:]}")
        with Wire(node.socket) as wire:
            send_many(wire, n, tally)
    finally:
        status = node.stop()
    journal = journal_file(data_dir, name)
    pristine = journal.read_bytes()
    cases: dict[str, Any] = {}
    runs = iter(range(1, 1000))
    for label, offset in flip_points(pristine).items():
        journal.write_bytes(pristine)
        flip(journal, offset)
        restart = restart_and_count(path, next(runs))
        case: dict[str, Any] = {
            "offset": offset,
            "accepted_records_from_offset": accepted_after(pristine, offset),
            "started": restart.started,
            "count": None if restart.count is None else restart.count - 1,
            "lost": missing(tally.acked, restart),
            "detected": restart.error is not None,
            "error": restart.error,
            "wrong_reply": restart.wrong,
            "names_file": journal.name in (restart.error or "") + restart.stderr,
            "last_line": restart.last_line,
        }
        if case["detected"]:
            case["repair"] = repair_and_count(journal, path, next(runs), tally.acked)
        cases[label] = case
    # a cut at half the file: by construction a torn tail (nothing whole after it),
    # which may be cut off; what it costs, and whether the cut is at least logged
    journal.write_bytes(pristine[: len(pristine) // 2])
    restart = restart_and_count(path, next(runs))
    truncated = {
        "accepted_records_cut": accepted_after(pristine, len(pristine) // 2),
        "started": restart.started,
        "lost": missing(tally.acked, restart),
        "error": restart.error,
        "logged": journal.name in restart.stderr,
    }
    head = cases["middle_byte"]
    silent = [c["lost"] or 0 for c in cases.values() if not c["detected"]]
    unreported = [
        c["repair"]["unreported"] or 0
        for c in cases.values()
        if "repair" in c and c["repair"].get("unreported") is not None
    ]
    return {
        "sent": tally.sent,
        "acked": tally.acked,
        "journal_bytes": len(pristine),
        "first_stop_exit": status,
        "silent_loss": 0 if head["detected"] else head["lost"],
        "detected": head["detected"],
        "silent_loss_worst": max(silent, default=0),
        "after_repair_unreported_worst": max(unreported) if unreported else None,
        "wrong_replies": sum(1 for c in cases.values() if c["wrong_reply"]),
        "flips": cases,
        "truncated_half": truncated,
    }


def repair_and_count(journal: Path, path: Path, run: int, acked: int) -> dict[str, Any]:
    """``airssys journal repair FILE --json``, then a start: what was lost against what
    the repair said was lost (``unreported``: lost and not in its list)."""
    done = subprocess.run(
        [sys.executable, "-m", "airssys.cli", "journal", "repair", str(journal), "--json"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr.strip().splitlines() or [""])[-1][-500:]
        return {"exit": done.returncode, "error": tail or done.stdout[-500:]}
    reported = len(report.get("lost", []))
    restart = restart_and_count(path, run)
    lost = missing(acked, restart)
    return {
        "exit": done.returncode,
        "reported_lost": reported,
        "redelivered": len(report.get("redelivered", [])),
        "started": restart.started,
        "error": restart.error,
        "lost": lost,
        "unreported": None if lost is None else max(0, lost - reported),
    }


@contextlib.contextmanager
def tmpfs(where: Path, size: int) -> Iterator[Path | str]:
    """A tmpfs of ``size`` bytes mounted at ``where`` (yields it), or the reason not."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield "not root: a tmpfs cannot be mounted"
        return
    if shutil.which("mount") is None:
        yield "no mount command"
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        yield f"mount -t tmpfs failed: {done.stderr.strip() or done.returncode}"
        return
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill_disk(filler: Path, leave: int) -> int:
    """Writes ``filler`` until the file system is full, then frees ``leave`` bytes."""
    chunk = b"\0" * 65536
    written = 0
    with filler.open("wb", buffering=0) as file:
        while True:
            try:
                written += file.write(chunk) or 0
            except OSError:
                break
        while True:  # the last partial chunk
            try:
                written += file.write(b"\0" * 4096) or 0
            except OSError:
                break
        file.truncate(max(0, written - leave))
    return max(0, written - leave)


def diskfull(where: Path, size: int, leave: int, after: int) -> dict[str, Any]:
    with tmpfs(where / "mnt", size) as mounted:
        if isinstance(mounted, str):
            return {"skipped": mounted, "acked_lost": None}
        name = "diskfull"
        data_dir = mounted / "data"
        # the supervisor keeps restarting the component while the disk is full (the
        # default gives up after 3 restarts in 5 s, and then nothing is acknowledged)
        path = deployment(where, data_dir, name, "intensity = 1000000\nperiod = 1.0\n")
        node = Node(path, 0)
        full, freed = Tally(), Tally()
        try:
            if not node.wait_ready():
                raise AssertionError(f"the node did not start:\n{node.stderr[-2000:]}")
            filler = mounted / "filler"
            filled = fill_disk(filler, leave)
            with Wire(node.socket) as wire:
                # until the node refuses 200 in a row (the journal cannot write)
                send_many(wire, 10_000_000, full, stop_after_refusals=200)
                filler.unlink()
                time.sleep(0.2)
                send_many(wire, after, freed)
        finally:
            status = node.stop()
        journal_size = journal_file(data_dir, name).stat().st_size
        restart = restart_and_count(path, 1)
        acked = full.acked + freed.acked
        lost = missing(acked, restart)
        return {
            "tmpfs_bytes": size,
            "filler_bytes": filled,
            "left_free": leave,
            "while_full": {
                "sent": full.sent,
                "acked": full.acked,
                "refused": full.refused,
                "errors": full.errors,
                "first_error": full.first_error,
            },
            "after_freeing": {
                "sent": freed.sent,
                "acked": freed.acked,
                "refused": freed.refused,
                "first_error": freed.first_error,
            },
            "acked": acked,
            "stop_exit": status,
            "journal_bytes": journal_size,
            "restart_started": restart.started,
            "restart_error": restart.error,
            "count": None if restart.count is None else restart.count - 1,
            "acked_lost": lost,
        }


def startup(where: Path, prefill: int, kill_after: int, grace: float) -> dict[str, Any]:
    """kill -9 once ``kill_after`` sends were acknowledged while the node was not yet
    ready (or ``grace`` seconds after it said ready, if the window closed first)."""
    name = "startup"
    data_dir = where / "data"
    path = deployment(where, data_dir, name)
    node = Node(path, 0)
    filled = Tally()
    try:
        if not node.wait_ready():
            raise AssertionError(f"the node did not start:\n{node.stderr[-2000:]}")
        with Wire(node.socket) as wire:
            send_many(wire, prefill, filled, window=256)
            reply = wire.request("ask", address=ADDRESS, message="1", timeout=120)
            assert count_of(reply) == filled.acked + 1, (reply, filled)
    finally:
        node.stop()
    journal_size = journal_file(data_dir, name).stat().st_size

    node = Node(path, 1)
    started = time.monotonic()
    tally = Tally()
    before_ready = 0
    ready_at: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and node.proc.poll() is None:
            if node.ready():
                ready_at.append(time.monotonic() - started)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    killed_at = first_connect = first_ack = 0.0
    try:
        conn: Wire | None = None
        while conn is None and time.monotonic() - started < READY_TIMEOUT:
            try:
                conn = Wire(node.socket, timeout=30)
            except OSError:
                time.sleep(0.002)
        assert conn is not None, "the control socket never accepted a connection"
        first_connect = time.monotonic() - started
        with conn:
            while time.monotonic() - started < READY_TIMEOUT:
                if before_ready >= kill_after and not ready_at:
                    break
                if ready_at and time.monotonic() - started >= ready_at[0] + grace:
                    break
                conn.write([SEND] * 8)
                tally.sent += 8
                for _ in range(8):
                    if tally.note(conn.read()) and not ready_at:
                        before_ready += 1
                        first_ack = first_ack or time.monotonic() - started
            node.proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic() - started
    finally:
        stop.set()
        node.kill()
        watcher.join()
    restart = restart_and_count(path, 2)
    expected = filled.acked + tally.acked
    lost = missing(expected, restart)
    return {
        "prefill": filled.acked,
        "journal_bytes": journal_size,
        "socket_open_s": first_connect,
        "first_ack_s": first_ack or None,
        "ready_s": ready_at[0] if ready_at else None,
        "killed_s": killed_at,
        "killed_before_ready": not ready_at,
        "sent": tally.sent,
        "acked": tally.acked,
        "acked_before_ready": before_ready,
        "refused": tally.refused,
        "errors": tally.errors,
        "restart_started": restart.started,
        "restart_error": restart.error,
        "new_in_count": None if restart.count is None else restart.count - 1 - filled.acked,
        "acked_lost": lost,
    }


def guarded(scenario: Callable[[Path], dict[str, Any]], prefix: str) -> dict[str, Any]:
    """One scenario in its own temporary directory; a failure of the bench itself is
    reported in the figures (``error``), not raised: the other scenarios still run."""
    try:
        with tempfile.TemporaryDirectory(prefix=f"airssys-bench-{prefix}-") as tmp:
            return scenario(Path(tmp))
    except Exception as exc:  # the figures say what broke
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def faults(quick: bool) -> dict[str, Any]:
    """The three scenarios: ``{"corruption": ..., "diskfull": ..., "startup": ...}``."""
    return {
        "corruption": guarded(lambda tmp: corruption(tmp, 1_500 if quick else 5_000), "corrupt"),
        "diskfull": guarded(
            lambda tmp: diskfull(
                tmp, size=8 << 20, leave=64 << 10, after=2_000 if quick else 10_000
            ),
            "diskfull",
        ),
        "startup": guarded(
            lambda tmp: startup(tmp, 30_000 if quick else 100_000, kill_after=200, grace=0.2),
            "startup",
        ),
    }


if __name__ == "__main__":  # one scenario's figures alone: python -m benches._journal_faults
    json.dump(faults("--quick" in sys.argv), sys.stdout, indent=2)
    sys.stdout.write("\n")
