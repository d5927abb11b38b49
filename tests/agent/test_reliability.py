"""Reliability findings of #9.8, each compared with supervisord 4.3 where it has an answer."""

from __future__ import annotations

import datetime
import itertools
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import StartDaemon, program, wait_for

KINDS = ["supervisord", "agent"]


@pytest.mark.parametrize("kind", KINDS)
def test_auto_child_logs_are_private(start_daemon: StartDaemon, kind: str) -> None:
    """AUTO logs land in a shared childlogdir (/tmp by default): 0600, like mkstemp's."""
    daemon = start_daemon("[program:talk]\ncommand=echo hello\nstartsecs=0\n"
                          "autorestart=false\n", kind=kind)
    path = Path(daemon.info("talk")["stdout_logfile"])
    wait_for(path.exists, what="the AUTO log")
    assert os.stat(path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_after_stopwaitsecs_is_a_warning(start_daemon: StartDaemon, kind: str) -> None:
    daemon = start_daemon(f"[program:stubborn]\ncommand={program('ignore_term.py')}\n"
                          "startsecs=0\nstopwaitsecs=1\n", kind=kind)
    pid = daemon.info("stubborn")["pid"]
    stdout = Path(daemon.info("stubborn")["stdout_logfile"])
    wait_for(lambda: stdout.exists() and "ignoring SIGTERM" in stdout.read_text(),
             what="the program to ignore SIGTERM")
    daemon.rpc().stopProcess("stubborn")
    log = (daemon.dir / "main.log").read_text()
    assert re.search(rf"WARN killing 'stubborn' \({pid}\) with SIGKILL", log), log[-2000:]


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2's ss is not installed")
@pytest.mark.parametrize("kind", KINDS)
def test_listen_backlog_is_512(start_daemon: StartDaemon, kind: str) -> None:
    """asyncio listens again with a backlog of 100 unless told otherwise: 2,000 quick
    connects then wait in SYN retries instead of the queue."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start_daemon(f"[inet_http_server]\nport=127.0.0.1:{port}\n", kind=kind)
    listing = subprocess.run(["ss", "-Hlnt", "sport", "=", f":{port}"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert int(listing[2]) >= 512, listing  # Send-Q of a listening socket: its backlog


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_times(log: Path, name: str) -> list[datetime.datetime]:
    stamps = re.findall(rf"^(\S+ \S+) INFO spawned: '{name}'", log.read_text(), re.M)
    return [datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]


def test_a_crash_loop_restarts_once_a_second(start_daemon: StartDaemon) -> None:
    """`/bin/false` with autorestart and startsecs=0 restarted ~1,100 times a second, a whole
    core; supervisord's one-second loop restarts it about once a second. So do we now."""
    daemon = start_daemon("[program:crash]\ncommand=/bin/false\nautorestart=true\n"
                          "startsecs=0\n")
    log = daemon.dir / "main.log"
    wait_for(lambda: len(spawn_times(log, "crash")) >= 2, what="two spawns")
    used = cpu_seconds(daemon.proc.pid)
    wait_for(lambda: len(spawn_times(log, "crash")) >= 5, what="five spawns")
    used = cpu_seconds(daemon.proc.pid) - used
    times = spawn_times(log, "crash")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # the first quick exit is restarted at once (a one-off crash); from the second in a row
    # on, a second apart
    assert all(gap >= 0.9 for gap in gaps[1:]), gaps
    span = (times[-1] - times[1]).total_seconds()
    assert used < 0.05 * span + 0.05, (used, span)  # well under 5% of a core
