"""Host services: a component with storage, a read-only mount and outbound HTTP.

components/reporter fetches a URL from a loopback server this example starts,
renders a template from its read-only /templates mount, and counts its checks in
its "reports" bucket; all three are granted in its Component.toml, and nothing
else: a URL on another host is refused at the call, and audited.
"""

from __future__ import annotations

import http.server
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ladder import check, component, run

from airssys import codec, open_system
from airssys.errors import HandlerError


class Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib names it
        body = b"all systems go"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


async def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/status"
    source = component("reporter")
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            async with open_system(data_dir=data_dir) as system:
                # files and network are beyond the default ceiling for unknown code
                await system.spawn_component(source, name="reporter", trust="trusted")
                for _ in range(2):
                    reply = codec.decode(await system.ask("/reporter", codec.encode({"url": url})))
                    print(f"  {reply['report'].strip()}")
                check(reply["checks"] == 2, "the bucket counted both checks")
                check("all systems go" in reply["report"], "the HTTP reply and the template met")
                denied = f"http://localhost:{server.server_port}/status"
                try:
                    await system.ask("/reporter", codec.encode({"url": denied}))
                    refused = ""
                except HandlerError as exc:
                    refused = str(exc)
                print(f"  {denied}: {refused}")
                check("capability denied" in refused, "a host outside the grant is refused")
                check(
                    bool(system.audit.query(component="/reporter", decision="deny")),
                    "the refusal is in the audit log",
                )
            # a new system on the same data directory: the bucket is still there
            async with open_system(data_dir=data_dir) as system:
                await system.spawn_component(source, name="reporter", trust="trusted")
                last = codec.decode(await system.ask("/reporter", codec.encode({"last": True})))
                print(f"  after a restart, the last report: {last['last'].strip()}")
                check(last["last"].startswith("check #2"), "storage outlived the system")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    run(main)
