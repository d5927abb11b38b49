"""A demo web server of the pool: `web.py BASE_PORT OFFSET` serves this folder on
BASE_PORT + OFFSET and logs each request, as a real pool member would."""

import http.server
import sys
from functools import partial
from pathlib import Path

port = int(sys.argv[1]) + int(sys.argv[2])
handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(Path(__file__).parent))
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
print(f"serving on http://127.0.0.1:{port}/", flush=True)
server.serve_forever()
