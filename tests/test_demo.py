"""`make run` stops cleanly (#11.5): SIGINT or SIGTERM to the demo runner (as Ctrl-C, `kill`,
`timeout` or systemd send it) stops the console (gunicorn, its workers and pollers), the agent
and the agent's programs: nothing of the demo is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.procfs import alive, descendants
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_stops_everything_it_started(tmp_path: Path, signum: int) -> None:
    port = free_port()
    env = {**os.environ, "CESI_DEMO_DIR": str(tmp_path), "CESI_DEMO_PORT": str(port),
           "CESI_DEMO_WEB_PORT": str(free_port())}
    env.pop("CESI_LIKE_CONFIG", None)
    runner = subprocess.Popen([sys.executable, str(ROOT / "demo" / "run.py")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/login", timeout=5).ok
            except requests.RequestException:
                return False

        wait_for(up, timeout=60, what="the demo console")
        # the agent, its four programs, gunicorn's master, workers and poller process
        family = wait_for(lambda: (f := descendants(runner.pid)) and len(f) >= 9 and f,
                          timeout=30, what="the demo's processes")
        runner.send_signal(signum)
        assert runner.wait(90) == 0  # both end through `finally`, as Ctrl-C does
        wait_for(lambda: not [pid for pid in family if alive(pid)], timeout=30,
                 what="every process of the demo to stop")
    finally:
        if runner.poll() is None:
            runner.kill()
        for pid in descendants(runner.pid):
            os.kill(pid, signal.SIGKILL)
