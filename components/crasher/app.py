"""crasher: answers {"ok": value}; the value "poison" crashes the component."""

from airssys.sdk import Message, log, on_message

handled = 0


@on_message
def handle(message: Message) -> object:
    global handled
    if message.value == "poison":
        log("warn", f"poisoned after {handled} messages; crashing")
        raise RuntimeError("poisoned")  # not a Reject: the component crashes
    handled += 1
    return {"ok": message.value, "handled": handled}
