"""Components in any language, side by side: size, compile, load, echo and fuel.

One echo-like component per language, each as a user gets it:
  * wat: the WAT template as `airssys init --lang wat` creates it (list lane only);
  * wat-text: components/fixtures/echo-text.wat (the bulk lane's text form, no work:
    the floor the other rows are compared with);
  * c, zig: the templates as `airssys init --lang c|zig` creates them, built by
    `airssys build` (zig and wasm-tools from PyPI);
  * python: components/echo (the airssys SDK, built with componentize-py);
  * js: the JS template as created, built with npm and ComponentizeJS (it greets: its
    reply carries the name back, about as long as the message); skipped without npm.
For each: the component's size, a cold compile (an empty compile cache), a warm load
(a new Runtime reading the compile cache), and for a JSON message {"name": "A..."} of
64 B, 1 KiB and 64 KiB the p50 of a direct call (ComponentInstance.handle_message, the
fast path, the limits of its Component.toml) and the fuel each message used. Also the
JS template's fuel per byte of JSON (at 64 KiB) and whether a 1 MiB JSON message passes
within its limits as created (default fuel, its memory cap and 1000 ms deadline).

    python benches/bench_components.py [--quick] [--json]
"""

from __future__ import annotations

import functools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airssys import codec
from airssys.actors._loading import load
from airssys.build import build_component
from airssys.cli._init import Lang, create_project
from airssys.errors import AirssysError
from airssys.runtime import Limits, Runtime
from benches import _jsbuild
from benches._common import FIXTURES, ROOT, emit_json, fmt_time, machine, parse_args, table

SIZES = (64, 1024, 64 * 1024)
MiB = 1024 * 1024


@dataclass
class Row:
    lang: str
    wasm: bytes
    source: Path  # a Component.toml folder, or the wasm/wat file itself
    note: str
    size_bytes: int = 0
    cold_compile_s: float = 0.0
    warm_load_ms: float = 0.0
    lane: str = ""
    limits: Limits = field(default_factory=Limits)
    echo_p50_us: dict[int, float] = field(default_factory=dict)
    fuel_per_msg: dict[int, int] = field(default_factory=dict)


def message(size: int) -> bytes:
    """A JSON message {"name": "A..."} of exactly ``size`` bytes."""
    empty = len(codec.encode({"name": ""}))
    return codec.encode({"name": "A" * (size - empty)})


def p50(fn: Callable[[], object], budget_s: float) -> float:
    fn()
    started = time.perf_counter()
    fn()
    one = max(time.perf_counter() - started, 1e-7)
    samples = []
    for _ in range(max(5, min(2000, int(budget_s / one)))):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def components(work: Path, cache: Path, notes: list[str]) -> list[Row]:
    rows = []
    wat = create_project("bench-wat", Lang.WAT, work / "wat").path
    rows.append(Row("wat", (wat / "bench-wat.wat").read_bytes(), wat, "list lane (template)"))
    text = FIXTURES / "echo-text.wat"
    rows.append(Row("wat-text", text.read_bytes(), text, "bulk-text, no work (floor)"))
    for lang in (Lang.C, Lang.ZIG):
        project = create_project(f"bench-{lang.value}", lang, work / lang.value).path
        wasm = build_component(project, cache_dir=cache).wasm
        rows.append(Row(lang.value, wasm.read_bytes(), project, "template, zig + wasm-tools"))
    echo = work / "echo"  # a copy: the build writes the wasm beside the sources
    shutil.copytree(ROOT / "components" / "echo", echo, ignore=shutil.ignore_patterns("*.wasm"))
    built = build_component(echo, cache_dir=cache).wasm
    rows.append(Row("python", built.read_bytes(), echo, "components/echo, componentize-py"))
    if _jsbuild.npm() is None:
        notes.append("js: skipped, npm is not installed")
        return rows
    js = create_project("bench-js", Lang.JS, work / "js").path
    try:
        _jsbuild.finish(_jsbuild.build_template(js, work / "npm"))
    except _jsbuild.JsBuildError as exc:
        notes.append(f"js: skipped, the build failed: {str(exc)[:300]}")
        return rows
    rows.append(Row("js", (js / "bench-js.wasm").read_bytes(), js, "template, ComponentizeJS"))
    return rows


def measure(row: Row, work: Path, budget_s: float) -> None:
    row.size_bytes = len(row.wasm)
    with Runtime(disk_cache=False) as rt:
        started = time.perf_counter()
        load(rt, row.source, None)  # a folder: its manifest's wasm (or .wat, from text)
        row.cold_compile_s = time.perf_counter() - started
    disk = work / f"compiled-{row.lang}"
    with Runtime(cache_dir=disk) as rt:
        load(rt, row.source, None)
    with Runtime(cache_dir=disk) as rt:
        started = time.perf_counter()
        loaded = load(rt, row.source, None)
        row.warm_load_ms = (time.perf_counter() - started) * 1000
        row.limits = loaded.limits
        with rt.instantiate(loaded.component, limits=loaded.limits) as instance:
            row.lane = "bulk-text" if instance.text_form else instance.lane
            for size in SIZES:
                payload = message(size)
                call = functools.partial(instance.handle_message, "bench", payload)
                row.echo_p50_us[size] = p50(call, budget_s) * 1e6
                instance.handle_message("bench", payload)
                row.fuel_per_msg[size] = instance.fuel_used


def mebibyte_json(row: Row) -> dict[str, Any]:
    """A 1 MiB JSON message through the component, within its limits as created."""
    payload = message(MiB)
    with Runtime(disk_cache=False) as rt:
        loaded = load(rt, row.source, None)
        with rt.instantiate(loaded.component, limits=loaded.limits) as instance:
            started = time.perf_counter()
            try:
                instance.handle_message("bench", payload)
            except AirssysError as exc:
                return {"ok": False, "error": str(exc)[:200], "limits": _limits(loaded.limits)}
            return {
                "ok": True,
                "ms": (time.perf_counter() - started) * 1000,
                "fuel": instance.fuel_used,
                "limits": _limits(loaded.limits),
            }


def _limits(limits: Limits) -> dict[str, Any]:
    return {
        "memory": limits.memory,
        "fuel_per_message": limits.fuel_per_message,
        "timeout_ms": limits.timeout_ms,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    budget = 0.3 if args.quick else 1.5
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="airssys-components-") as tmp:
        work = Path(tmp)
        rows = components(work, work / "cache", notes)
        for row in rows:
            measure(row, work, budget)
        js = next((r for r in rows if r.lang == "js"), None)
        js_mib = mebibyte_json(js) if js is not None else None
    floor = next(r for r in rows if r.lang == "wat-text")
    result: dict[str, Any] = {"benchmark": "components", "quick": args.quick}
    for row in rows:
        result[row.lang] = {
            "note": row.note,
            "lane": row.lane,
            "limits": _limits(row.limits),
            "size_bytes": row.size_bytes,
            "cold_compile_s": row.cold_compile_s,
            "warm_load_ms": row.warm_load_ms,
            "echo_p50_us": {str(s): row.echo_p50_us[s] for s in SIZES},
            "fuel_per_msg": {str(s): row.fuel_per_msg[s] for s in SIZES},
            "p50_vs_floor": {str(s): row.echo_p50_us[s] / floor.echo_p50_us[s] for s in SIZES},
        }
    if js is not None:
        result["js"]["fuel_per_byte"] = js.fuel_per_msg[SIZES[-1]] / SIZES[-1]
        result["js"]["mib_json"] = js_mib
    result["notes"] = notes
    result["machine"] = machine()
    if args.json:
        emit_json(result)
        return
    print('one echo-like component per language; JSON {"name": "A..."}; direct calls')
    print(
        table(
            ["lang", "lane", "memory cap", "size", "cold compile", "warm load"],
            [
                [
                    r.lang,
                    r.lane,
                    f"{r.limits.memory // 1024} KiB",
                    f"{r.size_bytes / 1024:.1f} KiB",
                    fmt_time(r.cold_compile_s),
                    fmt_time(r.warm_load_ms / 1000),
                ]
                for r in rows
            ],
        )
    )
    print()
    headers = ["lang"]
    for s in SIZES:
        headers += [f"p50 {s} B", "x floor", "fuel"]
    body = []
    for r in rows:
        line = [r.lang]
        for s in SIZES:
            line += [
                fmt_time(r.echo_p50_us[s] / 1e6),
                f"{r.echo_p50_us[s] / floor.echo_p50_us[s]:.1f}x",
                f"{r.fuel_per_msg[s]:,}",
            ]
        body.append(line)
    print(table(headers, body))
    if js is not None and js_mib is not None:
        print()
        print(f"js: {result['js']['fuel_per_byte']:.0f} fuel per byte of JSON at 64 KiB")
        if js_mib["ok"]:
            print(
                f"js: 1 MiB of JSON answered within its limits ({js_mib['limits']}): "
                f"{js_mib['ms']:.0f} ms, {js_mib['fuel']:,} fuel"
            )
        else:
            print(f"js: 1 MiB of JSON failed within its limits: {js_mib['error']}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
