"""Echo: a Python component answers in whatever codec it was asked in."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system


async def main() -> None:
    async with open_system() as system:
        await system.spawn_component(component("echo"), name="echo")
        for name in ("json", "messagepack", "raw"):
            value = b"bytes stay bytes" if name == "raw" else {"greeting": "hello", "n": 1}
            reply = await system.ask("/echo", codec.encode(value, name))
            answered = codec.codec_of(reply).name
            print(f"  asked in {name:<11} -> {answered:<11} {codec.decode(reply)!r}")
            check(codec.decode(reply) == value, f"{name} round trip")


if __name__ == "__main__":
    run(main)
