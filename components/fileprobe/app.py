"""fileprobe: reads, writes and lists files in whatever directories it was granted.

Messages (JSON): {"op": "read", "path": p} -> the text; {"op": "write", "path": p,
"text": t} -> the bytes written; {"op": "list", "path": p} -> sorted names. A
failure (no such file, permission denied, a path outside every mount) fails the
message with the OS error, so the caller sees exactly what the guest saw.
"""

import os

from airssys.sdk import Message, Reject, on_message


@on_message
def handle(message: Message) -> object:
    request = message.value
    op, path = request.get("op"), request.get("path", "")
    try:
        if op == "read":
            with open(path, encoding="utf-8") as f:
                return f.read()
        if op == "write":
            with open(path, "w", encoding="utf-8") as f:
                return f.write(request.get("text", ""))
        if op == "list":
            return sorted(os.listdir(path))
    except OSError as exc:
        raise Reject(f"{type(exc).__name__}: {exc}") from None
    raise Reject(f"unknown op {op!r}; accepted: read, write, list")
