"""counter: adds {"add": n} (default 1) to a running total and answers {"count": total}."""

from airssys.sdk import Message, Reject, on_message

total = 0


@on_message
def handle(message: Message) -> object:
    global total
    value = message.value
    step = value.get("add", 1) if isinstance(value, dict) else 1
    if not isinstance(step, int):
        raise Reject(f"'add' must be an integer, got {step!r}")
    total += step
    return {"count": total}
