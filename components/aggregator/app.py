"""aggregator: fans a request out and joins the replies through handle-callback.

Message: {"ask": ["/a", "/b"], "value": x, "reply_to": "/me"}. Each address gets x
as a request; the answer to the message itself is {"job": id, "pending": n}. When
every reply (or failure) is in, the aggregator sends {"job": id, "results": {...}}
to reply_to (or to the original sender).
"""

from airssys.sdk import (
    Callback,
    Message,
    MessagingError,
    Reject,
    log,
    on_callback,
    on_message,
    request,
    send,
)

jobs: dict[str, dict] = {}  # job id -> {"reply_to", "waiting", "results"}
owner: dict[str, tuple[str, str]] = {}  # correlation id -> (job id, address)
counter = 0


@on_message
def handle(message: Message) -> object:
    global counter
    value = message.value
    if not isinstance(value, dict) or not isinstance(value.get("ask"), list):
        raise Reject('expected {"ask": [addresses], "value": ...}')
    counter += 1
    job = f"job-{counter}"
    jobs[job] = {
        "reply_to": value.get("reply_to") or message.sender,
        "waiting": len(value["ask"]),
        "results": {},
    }
    for address in value["ask"]:
        try:
            owner[request(address, value.get("value"), timeout_ms=1000)] = (job, address)
        except MessagingError as exc:  # refused at once: an unknown address, say
            _record(job, address, {"error": str(exc)})
    log("info", f"{job}: asked {len(value['ask'])} actors")
    return {"job": job, "pending": len(value["ask"])}


@on_callback
def joined(callback: Callback) -> None:
    job, address = owner.pop(callback.correlation_id)
    _record(job, address, callback.value if callback.ok else {"error": callback.error})


def _record(job_id: str, address: str, result: object) -> None:
    job = jobs[job_id]
    job["results"][address] = result
    job["waiting"] -= 1
    if job["waiting"] == 0:
        del jobs[job_id]
        send(job["reply_to"], {"job": job_id, "results": job["results"]})
