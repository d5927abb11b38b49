"""`make run`: a fleet of three or more nodes in two environments, with a flapping and a
FATAL program, on the console within 15 s and listed as open problems by the demo's alert
rules; and it stops cleanly (#11.5): SIGINT or SIGTERM to
the demo runner (as Ctrl-C, `kill`, `timeout` or systemd send it) stops the console (gunicorn,
its workers and pollers), every node and their programs: nothing of the demo is left
running."""

from __future__ import annotations

import contextlib
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


def fleet_is_shown(run: Path, console: str, alerts: bool) -> None:
    """What a newcomer sees within seconds: nodes in two environments, a FATAL program and one
    that flaps (started again and again); with `alerts`, both as open problems too."""
    made = subprocess.run([sys.executable, "-m", "cesi_like.console.cli", "--config",
                           str(run / "cesi.conf"), "tokens", "create", "admin"],
                          capture_output=True, text=True, check=True)
    secret = made.stdout.split()[-1]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    nodes = api.get(f"{console}/api/v1/nodes", timeout=10).json()
    assert {"web-1", "web-2", "jobs-1"} <= {n["name"] for n in nodes}
    assert {e for n in nodes for e in n["environments"]} == {"production", "staging"}

    def fatal_and_flapping() -> bool:
        fatal = api.get(f"{console}/api/v1/processes", params={"state": "FATAL"},
                        timeout=10).json()
        history = api.get(f"{console}/api/v1/nodes/jobs-1/processes/flaky:flaky/history",
                          timeout=10).json()
        starts = [c for c in history["changes"] if c["to"] == 10]  # STARTING
        return ("jobs-1", "exporter:exporter") in {(p["node"], f"{p['group']}:{p['name']}")
                                                    for p in fatal} and len(starts) >= 2

    # seconds on a quiet machine; the room is for a loaded one (the CI's)
    wait_for(fatal_and_flapping, timeout=30, what="a FATAL and a flapping program")
    if not alerts:
        return

    def alerted() -> set[tuple[str, str, str]]:
        return {(p["kind"], p["node"], p["process"]) for p in api.get(
            f"{console}/api/v1/problems", timeout=10).json()}

    # the demo's alert rules were there before the nodes started: both are open problems
    wait_for(lambda: {("fatal", "jobs-1", "exporter:exporter"),
                      ("flapping", "jobs-1", "flaky:flaky")} <= alerted(),
             timeout=30, what="the FATAL and the flapping program on the Alerts page")
    # their webhook is web-1's first web server: it wrote the FATAL alert to its log
    wait_for(lambda: "exporter:exporter on jobs-1 entered FATAL" in api.get(
        f"{console}/api/v1/nodes/web-1/processes/web:web_0/log", timeout=10).json()["data"],
             timeout=30, what="the alert in the web server's log")


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
        # the alerts once: the other signal's run is about stopping
        fleet_is_shown(tmp_path, f"http://127.0.0.1:{port}", alerts=signum == signal.SIGTERM)
        # three nodes or more, their programs, gunicorn's master, workers and poller process
        family = wait_for(lambda: (f := descendants(runner.pid)) and len(f) >= 15 and f,
                          timeout=30, what="the demo's processes")
        runner.send_signal(signum)
        assert runner.wait(90) == 0  # both end through `finally`, as Ctrl-C does
        wait_for(lambda: not [pid for pid in family if alive(pid)], timeout=30,
                 what="every process of the demo to stop")
    finally:  # a failed test leaves nothing either: the family is known before the runner goes
        leftovers = descendants(runner.pid)
        if runner.poll() is None:
            runner.kill()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
