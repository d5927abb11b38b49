"""A demo web server of the pool: `web.py BASE_PORT OFFSET` serves this folder on
BASE_PORT + OFFSET and logs each request, as a real pool member would. It also takes the
console's alert webhook (POST /alerts, the demo's alert rules send there): what an alert says
goes to this program's log."""

import http.server
import json
import sys
from functools import partial
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        try:
            text = json.loads(self.rfile.read(length)).get("text", "")
        except (ValueError, AttributeError):
            text = "(not an alert)"
        if self.path == "/alerts":
            print(f"alert received: {text}", flush=True)
        self.send_response(204 if self.path == "/alerts" else 404)
        self.end_headers()


port = int(sys.argv[1]) + int(sys.argv[2])
handler = partial(Handler, directory=str(Path(__file__).parent))
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
print(f"serving on http://127.0.0.1:{port}/", flush=True)
server.serve_forever()
