"""The main job: load the echo component, send it a message, print the reply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .runtime import Runtime

FIXTURES = Path(__file__).resolve().parent.parent / "components" / "fixtures"


def main(argv: Sequence[str] = ()) -> int:
    message = " ".join(argv) or "hello from airssys"
    with Runtime() as runtime:
        echo = runtime.load_file(FIXTURES / "echo.wat")
        with runtime.instantiate(echo) as instance:
            reply = instance.handle_message("demo", message.encode())
            print(f"sent {message!r} to {echo.name}; reply {reply!r}; fuel {instance.fuel_used}")
    return 0 if reply == message.encode() else 1
