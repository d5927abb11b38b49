"""How soon an alert arrives after a crash: a program on cesi-agentd exits with status 3
(told to by a signal), and the console (`cesi-like serve`, poll_interval 2 s) posts the
crash alert to a webhook server in this process; the time from the signal to the webhook's
receipt, over several crashes. The target: within poll_interval + 1 s.

The program does not autorestart: a crash and restart both between two polls leave nothing
in a snapshot to see (Supervisor clears the exit status when it spawns), so the poller
catches crashes that leave a process EXITED, BACKOFF or FATAL, and restarts by their pid.

Usage: python bench/alerts.py [--crashes 10]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import INTERVAL, PY, console

from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy

AGENT = """[supervisord]
logfile={here}/main.log
[unix_http_server]
file={here}/d.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:worker]
command=/bin/sh -c 'trap "exit 3" USR1; while :; do sleep 0.05; done'
startsecs=0
autorestart=false
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=10)
    args = parser.parse_args()
    arrivals: list[float] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.append(time.monotonic())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    delays = []
    with tempfile.TemporaryDirectory(prefix="cesi-alert-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        here = Path(tmp) / "agent"
        here.mkdir()
        (here / "d.conf").write_text(AGENT.format(here=here))
        agent = subprocess.Popen([PY, "-m", "cesi_like.agent.main", "-n", "-c",
                                  str(here / "d.conf")], cwd=here, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT)
        stack.callback(agent.wait, 30)
        stack.callback(agent.terminate)
        url = f"unix://{here}/d.sock"
        rpc = server_proxy(url).supervisor
        while True:
            with contextlib.suppress(OSError):
                if rpc.getProcessInfo("worker")["statename"] == "RUNNING":
                    break
            time.sleep(0.1)
        base, token, _ = stack.enter_context(console(Path(tmp) / "console", [url]))
        headers = {"Authorization": f"Bearer {token}"}
        requests.post(f"{base}/api/v1/alerts", headers=headers, timeout=30, json={
            "name": "crash", "kind": "crash", "window_minutes": 1,
            "webhook_url": f"http://127.0.0.1:{server.server_address[1]}/"}).raise_for_status()
        time.sleep(3 * INTERVAL)  # the poller has the node and its feed
        for index in range(args.crashes):
            # a new subject each time: one alert per subject per window
            requests.delete(f"{base}/api/v1/alerts/{index + 1}", headers=headers, timeout=30)
            requests.post(f"{base}/api/v1/alerts", headers=headers, timeout=30, json={
                "name": f"crash{index}", "kind": "crash", "window_minutes": 1,
                "webhook_url": f"http://127.0.0.1:{server.server_address[1]}/"})
            before = len(arrivals)
            time.sleep(INTERVAL)  # the new rule is in place before the crash
            began = time.monotonic()
            rpc.signalProcess("worker", "USR1")
            deadline = began + 30
            while len(arrivals) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            if len(arrivals) == before:
                raise RuntimeError("no alert within 30 s")
            delays.append(arrivals[-1] - began)
            rpc.startProcess("worker")
    server.shutdown()
    print(f"\n{len(delays)} crashes, poll_interval {INTERVAL:g} s (target: within "
          f"{INTERVAL + 1:g} s)")
    print(f"crash -> webhook: median {statistics.median(delays):.2f} s, "
          f"max {max(delays):.2f} s ({max(delays) / (INTERVAL + 1):.2f}x the target)")


if __name__ == "__main__":
    main()
