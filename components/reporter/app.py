"""reporter: checks a service over HTTP and keeps a log of what it found.

Message (JSON): {"url": "http://127.0.0.1:8080/status"}. The component fetches the
URL (its network grant allows loopback only), renders /templates/report.txt (a
read-only mount) with what came back, counts the checks in its "reports" bucket
(key-value storage that outlives the instance) and keeps the last report there.
Answers {"report": text, "checks": n}. {"last": true} answers the last report kept.
"""

from airssys.sdk import Message, Reject, http, kv, on_message


@on_message
def handle(message: Message) -> object:
    request = message.value
    reports = kv.open("reports")
    if request.get("last"):
        last = reports.get("last")
        return {"last": None if last is None else last.decode("utf-8")}
    url = request.get("url")
    if not isinstance(url, str):
        raise Reject('expected {"url": "http://..."} or {"last": true}')
    try:
        response = http.get(url, timeout_ms=2000)
    except http.HttpError as exc:  # a denial names the missing grant
        raise Reject(str(exc)) from None
    with open("/templates/report.txt", encoding="utf-8") as f:
        template = f.read()
    checks = reports.increment("checks")
    report = template.format(n=checks, url=url, status=response.status, body=response.text)
    reports.set("last", report.encode("utf-8"))
    return {"report": report, "checks": checks}
