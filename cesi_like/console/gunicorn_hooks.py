"""gunicorn server hooks for `cesi-like serve`.

The master starts the poller as a process of its own, beside the workers: polling a thousand
nodes is CPU work, and in a worker it would share one interpreter lock with page rendering.
Each worker still runs a standby poller that waits for the lease, so if the poller process dies
a worker takes over within a few intervals (and gives way again on the next restart).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

_poller: subprocess.Popen[bytes] | None = None


def when_ready(server: Any) -> None:
    global _poller
    _poller = subprocess.Popen([sys.executable, "-m", "cesi_like.console.cli", "poll"])
    server.log.info("cesi-like: poller process %s started", _poller.pid)


def on_exit(server: Any) -> None:
    if _poller is not None and _poller.poll() is None:
        _poller.terminate()
        try:
            _poller.wait(10)
        except subprocess.TimeoutExpired:
            _poller.kill()
            _poller.wait()
