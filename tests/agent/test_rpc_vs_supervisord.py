"""Every fault a supervisor.* / system.* method can raise, provoked on supervisord 4.3 and on
cesi-agentd: the code and the string must be the same.

Programs meant to exit "too quickly" get a long startsecs: supervisord decides at reap time, and
on a loaded machine its loop may reap a fast exit only after a short startsecs has passed."""

from __future__ import annotations

import os
import re
import signal
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon, StartDaemon, daemons, program
from tests.support.waiting import wait_for

PROGRAMS = f"""
[program:running]
command=sleep 1000
startsecs=0

[program:idle]
command=sleep 1000
autostart=false

[program:exits]
command=/bin/sh -c "exit 3"
autostart=false
startsecs=0
autorestart=false

[program:dies]
command=/bin/sh -c "sleep 0.3; exit 3"
autostart=false
startsecs=10
startretries=0
autorestart=false

[program:quick]
command=/bin/sh -c "exit 0"
autostart=false
startsecs=10
startretries=0

[program:missing]
command=/no/such/binary
autostart=false

[program:quiet]
command=sleep 1000
autostart=false
stdout_logfile=NONE

[program:echo]
command={program("echo_stdin.py")}
startsecs=0

[program:lazy]
command=sleep 1000
startsecs=0
"""

Call = Callable[[Any], Any]

CALLS: dict[str, Call] = {
    "unknown method": lambda rpc: rpc.supervisor.nope(),
    "private method": lambda rpc: rpc.supervisor._update("x"),
    "too many args": lambda rpc: rpc.supervisor.getPID(1),
    "too few args": lambda rpc: rpc.supervisor.startProcess(),
    "bad name": lambda rpc: rpc.supervisor.getProcessInfo("nope"),
    "bad group": lambda rpc: rpc.supervisor.startProcessGroup("nope"),
    "bad name in group": lambda rpc: rpc.supervisor.stopProcess("running:nope"),
    "already started": lambda rpc: rpc.supervisor.startProcess("running"),
    "not running": lambda rpc: rpc.supervisor.stopProcess("idle"),
    "signal not running": lambda rpc: rpc.supervisor.signalProcess("idle", "HUP"),
    "bad signal": lambda rpc: rpc.supervisor.signalProcess("running", "NOPE"),
    "no file": lambda rpc: rpc.supervisor.startProcess("missing"),
    "spawn error": lambda rpc: rpc.supervisor.startProcess("quick"),
    "dies during startsecs": lambda rpc: rpc.supervisor.startProcess("dies"),
    "no log file": lambda rpc: rpc.supervisor.readProcessStdoutLog("quiet", 0, 10),
    "bad log arguments": lambda rpc: rpc.supervisor.readLog(-10, 5),
    "negative length": lambda rpc: rpc.supervisor.readProcessStderrLog("running", 0, -1),
    "already added": lambda rpc: rpc.supervisor.addProcessGroup("running"),
    "add unknown": lambda rpc: rpc.supervisor.addProcessGroup("nope"),
    "still running": lambda rpc: rpc.supervisor.removeProcessGroup("running"),
    "remove unknown": lambda rpc: rpc.supervisor.removeProcessGroup("nope"),
    "stdin not running": lambda rpc: rpc.supervisor.sendProcessStdin("idle", "x"),
    "stdin bad type": lambda rpc: rpc.supervisor.sendProcessStdin("echo", 5),
    "help unknown": lambda rpc: rpc.system.methodHelp("supervisor.nope"),
    "signature unknown": lambda rpc: rpc.system.methodSignature("nope"),
    "tail missing file": lambda rpc: rpc.supervisor.tailProcessStdoutLog("quiet", 0, 10),
    "group results": lambda rpc: rpc.supervisor.stopProcessGroup("idle"),
    # the fault names the process as the caller did
    "already started, long name": lambda rpc: rpc.supervisor.startProcess("lazy:lazy"),
    "spawn error, long name": lambda rpc: rpc.supervisor.startProcess("quick:quick"),
    "all signal": lambda rpc: sorted(
        (r["name"], r["status"], r["description"])
        for r in rpc.supervisor.signalAllProcesses("WINCH")),
    "multicall": lambda rpc: rpc.system.multicall([
        {"methodName": "supervisor.getProcessInfo", "params": ["nope"]},
        {"methodName": "supervisor.stopProcess", "params": ["idle"]},
        {"methodName": "supervisor.nope", "params": []}]),
    # last (they leave a program starting): without waiting, what fails before the fork is
    # a fault and what fails once it runs is not seen (supervisord's reap right after the
    # fork comes before its child has run)
    "no file, no wait": lambda rpc: rpc.supervisor.startProcess("missing", False),
    "dies later, no wait": lambda rpc: rpc.supervisor.startProcess("dies:dies", False),
}


def outcome(daemon: Daemon, call: Call) -> Any:
    try:
        return ("value", call(daemon_proxy(daemon)))
    except xmlrpc.client.Fault as fault:
        return ("fault", fault.faultCode, fault.faultString)


def daemon_proxy(daemon: Daemon) -> Any:
    from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy

    return server_proxy(daemon.url, timeout=30)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run every call once against each daemon (one pair of daemons for the whole module)."""
    results: dict[str, dict[str, Any]] = {}
    with daemons(tmp_path_factory.mktemp("rpc")) as start:
        for kind in ("supervisord", "agent"):
            daemon = start(PROGRAMS, kind=kind)
            daemon.wait_state("running", "RUNNING")
            wait_for(lambda d=daemon: d.state("echo") == "RUNNING")
            results[kind] = {name: outcome(daemon, call) for name, call in CALLS.items()}
    return results


@pytest.mark.parametrize("name", list(CALLS))
def test_same_outcome_as_supervisord(outcomes: dict[str, dict[str, Any]], name: str) -> None:
    assert outcomes["agent"][name] == outcomes["supervisord"][name]


def test_every_fault_code_was_provoked(outcomes: dict[str, dict[str, Any]]) -> None:
    codes = {result[1] for result in outcomes["supervisord"].values() if result[0] == "fault"}
    assert {1, 2, 3, 4, 10, 11, 20, 50, 60, 70, 90, 91} <= codes


def test_list_methods_matches(start_daemon: StartDaemon) -> None:
    names = {}
    for kind in ("supervisord", "agent"):
        daemon = start_daemon("", kind=kind)
        names[kind] = daemon_proxy(daemon).system.listMethods()
    assert names["agent"] == names["supervisord"]


def test_reread_of_a_broken_config_is_cant_reread(start_daemon: StartDaemon) -> None:
    for kind in ("supervisord", "agent"):
        daemon = start_daemon("[program:p]\ncommand=sleep 1000\nautostart=false\n", kind=kind)
        daemon.conf.write_text(daemon.conf.read_text() + "startsecs=soon\n")
        with pytest.raises(xmlrpc.client.Fault) as caught:
            daemon_proxy(daemon).supervisor.reloadConfig()
        assert caught.value.faultCode == 92
        assert caught.value.faultString.startswith("CANT_REREAD: ")
        assert "'soon'" in caught.value.faultString
        if kind == "agent":  # ours also names the file, line, section and key
            line = len(daemon.conf.read_text().splitlines())
            assert f"{daemon.conf}:{line}: [program:p] startsecs:" in caught.value.faultString


ORDERING = f"""
[program:slow]
command=sleep 1000
startsecs=1
autostart=false
priority=5

[program:web]
command=sleep 1000
process_name=%(program_name)s_%(process_num)s
numprocs=11
startsecs=0
autostart=false
priority=10

[program:missing]
command=/no/such/binary
autostart=false
priority=20

[program:stubborn]
command={program("ignore_term.py")}
startsecs=0
stopwaitsecs=30
priority=30
"""


def test_start_and_stop_all_report_in_supervisords_order(start_daemon: StartDaemon) -> None:
    """Decided at once first (in priority order, then by name: web_10 before web_2, as
    supervisord sorts them), then what had to wait; stops in priority order."""
    seen = {}
    for kind in ("supervisord", "agent"):
        rpc = daemon_proxy(start_daemon(ORDERING, kind=kind)).supervisor
        started = [(r["name"], r["status"]) for r in rpc.startAllProcesses()]
        rpc.stopProcess("stubborn", False)
        rpc.signalProcess("stubborn", "KILL")
        # stops finish as the children die: supervisord reports them in the order its 50 ms
        # checks find them done, so only the set is the same from run to run
        stopped = sorted((r["name"], r["status"]) for r in rpc.stopAllProcesses())
        seen[kind] = (started, stopped)
    assert seen["agent"] == seen["supervisord"]
    started = seen["agent"][0]
    assert started[-1] == ("slow", 80) and ("missing", 20) in started  # the wait comes last


def test_signals_are_refused_during_shutdown(start_daemon: StartDaemon) -> None:
    for kind in ("supervisord", "agent"):
        daemon = start_daemon(f"[program:stubborn]\ncommand={program('ignore_term.py')}\n"
                              "startsecs=0\nstopwaitsecs=30\n", kind=kind)
        log = Path(daemon.info("stubborn")["stdout_logfile"])
        wait_for(lambda p=log: p.exists() and "ignoring SIGTERM" in p.read_text())
        rpc = daemon_proxy(daemon).supervisor
        pid = daemon.info("stubborn")["pid"]
        rpc.shutdown()
        for method, args in (("signalProcess", ("stubborn", "HUP")),
                             ("signalProcessGroup", ("stubborn", "HUP")),
                             ("signalAllProcesses", ("HUP",))):
            with pytest.raises(xmlrpc.client.Fault) as refused:
                getattr(rpc, method)(*args)
            assert (refused.value.faultCode, refused.value.faultString) == (
                6, "SHUTDOWN_STATE"), kind
        os.kill(pid, signal.SIGKILL)  # let the shutdown finish now


def test_trace_level_logs_each_call_as_supervisord(start_daemon: StartDaemon) -> None:
    """loglevel=trace: one line when a request's method is called and one when it returns,
    with the fault when it fails (the console's scale-out test counts polls with these)."""
    lines = {}
    for kind in ("supervisord", "agent"):
        daemon = start_daemon("", kind=kind, loglevel="trace")
        rpc = daemon_proxy(daemon).supervisor
        rpc.getState()
        with pytest.raises(xmlrpc.client.Fault):
            rpc.getProcessInfo("nosuch")
        expected = "XML-RPC method supervisor.getProcessInfo() returned fault: [10] BAD_NAME"
        log = daemon.wait_log(expected)
        lines[kind] = [line.split(" ", 3)[3] for line in log.splitlines()
                       if "XML-RPC method" in line][-4:]  # start_daemon called some too
    assert lines["agent"] == lines["supervisord"] == [
        "XML-RPC method called: supervisor.getState()",
        "XML-RPC method supervisor.getState() returned successfully",
        "XML-RPC method called: supervisor.getProcessInfo()",
        "XML-RPC method supervisor.getProcessInfo() returned fault: [10] BAD_NAME: nosuch"]


def test_start_without_waiting_ignores_a_quick_exit(start_daemon: StartDaemon) -> None:
    """supervisord's startProcess(name, False) reaps right after its fork, before the child
    has run, so a program that exits at once is still "started" (True); the agent's spawn
    returns once the child has exec'd, and must not reap it there (it answered SPAWN_ERROR).
    supervisord itself gives SPAWN_ERROR now and then, when its child wins the race."""
    daemon = start_daemon(PROGRAMS)
    for _ in range(5):
        assert daemon.rpc().startProcess("exits", False) is True
        daemon.wait_state("exits", "EXITED")


TIES = """
[program:web]
command=sleep 1000
startsecs=0

[program:talker]
command=sleep 1000
startsecs=0

[program:api]
command=sleep 1000
startsecs=0
priority=5
"""


def test_groups_of_equal_priority_go_in_name_order(start_daemon: StartDaemon) -> None:
    """#18.3: supervisord sorts its groups by priority, then name (its config objects' order);
    the agent kept the file's order, so `talker,web` came back `web,talker`."""
    seen = {}
    for kind in ("supervisord", "agent"):
        daemon = start_daemon(TIES, kind=kind)
        for name in ("api", "talker", "web"):
            daemon.wait_state(name, "RUNNING")
        spawned = re.findall(r"spawned: '(\w+)'", daemon.log())
        rpc = daemon_proxy(daemon).supervisor
        stopped = [r["name"] for r in rpc.stopAllProcesses(False)]
        started = [r["name"] for r in rpc.startAllProcesses(False)]
        seen[kind] = (spawned, stopped, started)
    assert seen["agent"] == seen["supervisord"] == (["api", "talker", "web"],) * 3


UNICODE = """
[program:u]
command=/bin/sh -c "printf 'caf\\303\\251 \\342\\202\\254'; exec sleep 1000"
startsecs=0
stdout_logfile=%(here)s/u.log
"""


def _windows(daemon: Daemon) -> list[tuple[str, int, int, object]]:
    rpc = daemon_proxy(daemon).supervisor
    seen: list[tuple[str, int, int, object]] = []
    for method in ("readProcessStdoutLog", "tailProcessStdoutLog"):
        for offset in range(10):
            for length in (1, 2, 3, 9):
                try:
                    answer = getattr(rpc, method)("u", offset, length)
                except xmlrpc.client.ProtocolError as error:
                    answer = f"HTTP {error.errcode}"
                seen.append((method, offset, length, answer))
    return seen


def test_a_log_window_that_cuts_a_character_is_an_error(start_daemon: StartDaemon) -> None:
    """#18.2: "café €" read one byte at a time came back as U+FFFD garbage; supervisord
    answers HTTP 500 for a window that cuts a character, and clients widen it on that."""
    seen = {}
    for kind in ("supervisord", "agent"):
        daemon = start_daemon(UNICODE, kind=kind)
        wait_for(lambda d=daemon: (d.dir / "u.log").read_bytes().endswith("€".encode()))
        seen[kind] = _windows(daemon)
    assert seen["agent"] == seen["supervisord"]
    answers = {(offset, length): answer for method, offset, length, answer in seen["agent"]
               if method == "readProcessStdoutLog"}
    assert answers[(3, 1)] == "HTTP 500" and answers[(3, 2)] == "é"
    assert not any("\ufffd" in str(answer) for *_, answer in seen["agent"])
