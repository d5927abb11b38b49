"""gunicorn server hooks for `cesi-like serve`.

The master starts the poller as processes of their own (`poll_processes`, each polling its
share of the nodes), beside the workers: polling a thousand nodes is CPU work, and in a worker
it would share one interpreter lock with page rendering. Each worker still runs a standby
poller that waits for the leases, so if a poller process dies a worker takes its share over
within a few intervals; a poller process that asks for a share a worker holds (one that
started late, on a slow host) gets it at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from . import settings

_pollers: list[subprocess.Popen[bytes]] = []

# gunicorn 25.1 and later open a control socket at one path per user ($XDG_RUNTIME_DIR or
# ~/.gunicorn): a second console on the host (another instance, a test's) takes it from the
# first, and nothing here uses it. Older gunicorns ignore names they do not know.
control_socket_disable = True


def when_ready(server: Any) -> None:
    count = settings.load(settings.find_config(None, os.environ)).poll_processes
    for index in range(1, count + 1):
        poller = subprocess.Popen([sys.executable, "-m", "cesi_like.console.cli", "poll",
                                   "--share", f"{index}/{count}"])
        _pollers.append(poller)
        server.log.info("cesi-like: poller process %s (%d of %d) started", poller.pid, index,
                        count)


def on_exit(server: Any) -> None:
    for poller in _pollers:
        if poller.poll() is None:
            poller.terminate()
    for poller in _pollers:
        try:
            poller.wait(10)
        except subprocess.TimeoutExpired:
            poller.kill()
            poller.wait()
