"""One scripted supervisorctl session against supervisord 4.3 and against cesi-agentd.

Every output line and exit code must match, once pids, uptimes, dates and paths are masked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemons import Daemon, StartDaemon, daemons
from tests.support.waiting import wait_for

PROGRAMS = """
[program:alpha]
command=/bin/sh -c "echo alpha out; echo alpha err >&2; exec sleep 1000"
startsecs=0

[group:grp]
programs=beta,gamma

[program:beta]
command=sleep 1000
startsecs=0

[program:gamma]
command=sleep 1000
startsecs=0
autostart=false

[program:broken]
command=/bin/sh -c "exit 1"
startretries=0

[program:manual]
command=sleep 1000
autostart=false
startsecs=0
"""

# After the edit: manual and broken are gone (broken's exit races supervisord's own reap, which
# would make `start all` order timing-dependent), added is new, and gamma's change makes its
# whole group grp "changed".
CHANGED = PROGRAMS.split("[program:broken]")[0].replace(
    "startsecs=0\nautostart=false\n", "startsecs=0\nautostart=false\nstartretries=5\n", 1
) + "[program:added]\ncommand=sleep 1000\nstartsecs=0\n"

# "version" prints each server's version: ours reports the interface it implements (4.3.0)
BEFORE_RELOAD = [
    "status", "status alpha", "status grp:*", "status nosuch", "status alpha nosuch",
    "start alpha", "stop alpha", "stop alpha", "start alpha", "restart alpha",
    "start grp:*", "stop grp:*", "start grp:gamma", "stop grp:gamma", "start nosuch",
    "start", "stop nosuch:*",
    "signal WINCH alpha", "signal BADSIG alpha", "signal HUP manual", "signal HUP",
    "pid", "pid alpha", "pid nosuch", "pid all",
    "tail alpha", "tail alpha stderr", "tail -5 alpha", "tail nosuch",
    "clear alpha", "tail alpha", "clear nosuch",
    "avail", "status broken", "fg manual", "fg nosuch", "version", "nonsense",
]
AFTER_RELOAD = [
    "reread", "avail", "update", "status", "reread", "remove alpha", "stop alpha",
    "remove alpha", "add alpha", "add alpha", "add nosuch", "stop all", "status", "start all",
    "status", "restart grp:*", "shutdown",
]

MASKS = [
    (re.compile(r"pid \d+"), "pid N"),
    (re.compile(r"uptime \d+:\d\d:\d\d"), "uptime T"),
    (re.compile(r"[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M"), "DATE"),
    (re.compile(r"^\d+$", re.M), "N"),
    (re.compile(r"^4\.3\.0$", re.M), "VERSION"),
]


CLIENTS = {"supervisorctl": "supervisor.supervisorctl", "cesi-agentctl": "cesi_like.agent.ctl"}


def run(daemon: Daemon, command: str, client: str = "supervisorctl") -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", CLIENTS[client], "-c", str(daemon.conf), *command.split()],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    output = (result.stdout + result.stderr).replace(str(daemon.dir), "<DIR>")
    for pattern, replacement in MASKS:
        output = pattern.sub(replacement, output)
    return result.returncode, output


def settle(daemon: Daemon) -> None:
    """Wait until the autostarted programs reached their resting states."""
    daemon.wait_state("broken", "FATAL")
    for name in ("alpha", "grp:beta"):
        daemon.wait_state(name, "RUNNING")
    wait_for(lambda: "alpha err" in daemon.child_log("alpha", "stderr"))


def play(daemon: Daemon, client: str = "supervisorctl") -> list[tuple[str, int, str]]:
    settle(daemon)
    transcript = [(command, *run(daemon, command, client)) for command in BEFORE_RELOAD]
    daemon.conf.write_text(daemon.conf.read_text().replace(PROGRAMS, CHANGED))
    transcript += [(command, *run(daemon, command, client)) for command in AFTER_RELOAD]
    daemon.proc.wait(30)
    return transcript


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, str]]:
    """The stock pair's transcript, played once for the three pairings compared with it."""
    with daemons(tmp_path_factory.mktemp("reference")) as start:
        return play(start(PROGRAMS, kind="supervisord"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("client", "kind"), [("supervisorctl", "agent"),
                                              ("cesi-agentctl", "supervisord"),
                                              ("cesi-agentctl", "agent")])
def test_session_matches_supervisorctl_on_supervisord(
    start_daemon: StartDaemon, reference: list[tuple[str, int, str]], client: str, kind: str
) -> None:
    """The reference is the stock pair; swapping in our daemon, our client, or both must not
    change a line."""
    assert "[program:manual]" not in CHANGED and "[program:added]" in CHANGED
    assert "startretries=5" in CHANGED
    ours = play(start_daemon(PROGRAMS, kind=kind), client)
    for expected, actual in zip(reference, ours, strict=True):
        if comparable(expected) != comparable(actual):
            assert actual == expected, f"`supervisorctl {expected[0]}` differs"


def comparable(entry: tuple[str, int, str]) -> tuple[str, int, object]:
    """Group and `all` commands report processes in the order supervisord's polling happens to
    see them finish, which races even between two runs of supervisord: compare their lines as
    a multiset. Usage errors are compared by their message. Everything else verbatim."""
    command, code, output = entry
    if output.startswith(("Error:", "ERROR: no process name")):
        # a usage error: the message and exit code are compared, the help text that follows
        # is each client's own prose
        return command, code, output.splitlines()[0]
    if "*" in command or " all" in command:
        return command, code, sorted(output.splitlines())
    return command, code, output


def test_transcript_masks_leave_content(tmp_path: Path) -> None:
    """The masks must not blank out what the session is meant to compare."""
    text = "alpha                            RUNNING   pid 12, uptime 0:00:03\n1234\n"
    masked = text
    for pattern, replacement in MASKS:
        masked = pattern.sub(replacement, masked)
    assert masked == "alpha                            RUNNING   pid N, uptime T\nN\n"


@pytest.mark.parametrize(("client", "kind"), [("supervisorctl", "supervisord"),
                                              ("supervisorctl", "agent"),
                                              ("cesi-agentctl", "supervisord"),
                                              ("cesi-agentctl", "agent")])
@pytest.mark.parametrize("command", ["tail -f ticker", "tail -f ticker stderr", "maintail -f"])
def test_follow_commands_stream(
    start_daemon: StartDaemon, client: str, kind: str, command: str
) -> None:
    daemon = start_daemon(
        '[program:ticker]\ncommand=/bin/sh -c "while true; do echo tick; echo tock >&2; '
        'sleep 0.2; done"\nstartsecs=0\n', kind=kind)
    daemon.wait_state("ticker", "RUNNING")
    follower = subprocess.Popen(
        [sys.executable, "-m", CLIENTS[client], "-c", str(daemon.conf), *command.split()],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    assert follower.stdout is not None
    try:
        lines = [follower.stdout.readline() for _ in range(4)]
    finally:
        follower.kill()
        follower.wait()
    assert lines[0] == b"==> Press Ctrl-C to exit <==\n"
    expected = {"tail -f ticker": b"tick\n", "tail -f ticker stderr": b"tock\n"}
    if command in expected:
        assert lines[1:] == [expected[command]] * 3
    else:
        assert all(b" INFO " in line or b" CRIT " in line for line in lines[1:])
