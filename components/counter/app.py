"""counter: adds {"add": n} (default 1) to a running total and answers {"count": total}.

The total is durable state: the component's snapshot carries it, so a fresh instance
restored from one counts on from there.
"""

from airssys.sdk import Message, Reject, durable, on_message

state = durable(count=0)


@on_message
def handle(message: Message) -> object:
    value = message.value
    step = value.get("add", 1) if isinstance(value, dict) else 1
    if not isinstance(step, int):
        raise Reject(f"'add' must be an integer, got {step!r}")
    state["count"] += step
    return {"count": state["count"]}
