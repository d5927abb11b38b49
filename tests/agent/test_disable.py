"""#18.11: programs disabled for good. A disabled program is stopped and nothing starts it:
not autostart, autorestart, `start all`, `update`, a reload, or a restart of the agent after
a kill -9; a start of it is refused, through the stock supervisorctl with one line and a
non-zero status; its description says so; the set lives in a state file written atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy
from tests.support.daemons import BASE, Daemon, StartDaemon, command_for
from tests.support.waiting import wait_for

PROGRAMS = ("[program:web]\ncommand=sleep 1000\nstartsecs=0\n"
            "[program:crash]\ncommand=false\nstartsecs=0\nautorestart=true\n"
            "[program:worker]\ncommand=sleep 1000\nprocess_name=w%(process_num)s\nnumprocs=2\n"
            "startsecs=0\n")


def ctl(daemon: Daemon, tool: str, *args: str) -> tuple[int, str]:
    module = "supervisor.supervisorctl" if tool == "supervisorctl" else "cesi_like.agent.ctl"
    done = subprocess.run([sys.executable, "-m", module, "-c", str(daemon.conf), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout + done.stderr


def cesi(daemon: Daemon) -> Any:
    return server_proxy(daemon.url, timeout=30).cesi


def state_file(daemon: Daemon) -> Path:
    return daemon.dir / "daemon.state"  # beside daemon.pid


def test_disable_stops_and_start_is_refused(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS)
    daemon.wait_state("web", "RUNNING")
    assert ctl(daemon, "cesi-agentctl", "disable", "web") == (0, "web: disabled\n")
    info = daemon.info("web")
    assert (info["statename"], info["description"]) == ("STOPPED", "Disabled")
    assert json.loads(state_file(daemon).read_text())["disabled"] == ["web:web"]
    # the stock supervisorctl: one line, a non-zero status, no traceback
    code, output = ctl(daemon, "supervisorctl", "start", "web")
    assert (code, output) == (7, "web: ERROR (spawn error)\n")
    assert ctl(daemon, "cesi-agentctl", "start", "web") == (7, "web: ERROR (disabled)\n")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        daemon.rpc().startProcess("web")
    assert fault.value.faultString == "SPAWN_ERROR: web is disabled"
    code, output = ctl(daemon, "supervisorctl", "status", "web")
    assert output.split() == ["web", "STOPPED", "Disabled"]
    # start all passes it by; restart refuses it
    assert "web" not in ctl(daemon, "supervisorctl", "start", "all")[1]
    assert daemon.state("web") == "STOPPED"
    assert ctl(daemon, "supervisorctl", "restart", "web")[1] == (
        "web: ERROR (not running)\nweb: ERROR (spawn error)\n")
    # enabling starts nothing, and then a start works
    assert ctl(daemon, "cesi-agentctl", "enable", "web") == (0, "web: enabled\n")
    assert daemon.state("web") == "STOPPED" and daemon.info("web")["description"] != "Disabled"
    assert json.loads(state_file(daemon).read_text())["disabled"] == []
    assert ctl(daemon, "supervisorctl", "start", "web") == (0, "web: started\n")
    log = daemon.log()
    assert "INFO disabled: web" in log and "INFO enabled: web" in log


def test_a_crash_loop_disabled_stays_stopped(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS)
    wait_for(lambda: "exited: crash" in daemon.log(), what="the crash loop")
    assert cesi(daemon).disableProcess("crash") is True
    info = daemon.info("crash")  # a stop ended it at once (see #18.8)
    assert (info["statename"], info["description"]) == ("STOPPED", "Disabled")
    # that nothing restarts it later is the state machine's scenario
    # `a_disabled_crash_loop_is_never_restarted` (a fake clock five seconds on)


def test_a_group_is_disabled_and_enabled_whole(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS)
    daemon.wait_state("worker:w1", "RUNNING")
    assert ctl(daemon, "cesi-agentctl", "disable", "worker:*") == (
        0, "worker:w0: disabled\nworker:w1: disabled\n")
    assert cesi(daemon).getDisabled() == ["worker:w0", "worker:w1"]
    assert [daemon.state(f"worker:w{n}") for n in (0, 1)] == ["STOPPED", "STOPPED"]
    assert ctl(daemon, "supervisorctl", "start", "worker:*") == (0, "")  # passed by
    assert daemon.state("worker:w0") == "STOPPED"
    assert ctl(daemon, "cesi-agentctl", "enable", "worker:*") == (
        0, "worker:w0: enabled\nworker:w1: enabled\n")
    assert ctl(daemon, "cesi-agentctl", "disable", "nosuch") == (1, "nosuch: ERROR (no such "
                                                                   "process)\n")
    assert ctl(daemon, "cesi-agentctl", "disable", "nosuch:*") == (1, "nosuch:*: ERROR (no "
                                                                     "such group)\n")


def test_the_disabled_survive_reload_update_and_kill_9(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS)
    daemon.wait_state("web", "RUNNING")
    cesi(daemon).disableProcess("web")
    # SIGHUP: a new generation of every program, web not among them
    done = daemon.log().count("RPC interface 'supervisor' initialized")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.log().count("RPC interface 'supervisor' initialized") > done,
             what="the reload")
    daemon.wait_state("worker:w0", "RUNNING")
    assert daemon.state("web") == "STOPPED"
    # update with web changed: removed and added again, still disabled
    daemon.conf.write_text(daemon.conf.read_text().replace(
        "[program:web]\ncommand=sleep 1000", "[program:web]\ncommand=sleep 1001"))
    assert "web: updated process group" in ctl(daemon, "supervisorctl", "update")[1]
    assert (daemon.state("web"), daemon.info("web")["description"]) == ("STOPPED", "Disabled")
    # kill -9, and an agent started again on the same config
    pids = [info["pid"] for info in daemon.rpc().getAllProcessInfo() if info["pid"]]
    daemon.proc.kill()
    daemon.proc.wait()
    for pid in pids:  # what it left behind, as supervisord would
        os.kill(pid, signal.SIGKILL)
    (daemon.dir / "daemon.sock").unlink()
    with open(daemon.dir / "again.txt", "wb") as out:
        again = subprocess.Popen(command_for("agent", daemon.conf, "-n"), stdout=out,
                                 stderr=subprocess.STDOUT, cwd=daemon.dir)
    daemon.proc = again  # the fixture stops it
    wait_for(lambda: daemon.sock.exists() and daemon.state("worker:w0") == "RUNNING",
             what="the agent again")
    assert (daemon.state("web"), daemon.info("web")["description"]) == ("STOPPED", "Disabled")
    assert cesi(daemon).getDisabled() == ["web:web"]


def test_a_broken_state_file_starts_nothing(tmp_path: Path) -> None:
    """A state file that is not one (edited by hand, say) stops the agent at start, naming
    it, before anything is spawned: starting with nothing disabled would start what was."""
    marker = tmp_path / "spawned"
    conf = tmp_path / "daemon.conf"
    conf.write_text(BASE.format(loglevel="info")
                    + f"[program:web]\ncommand=touch {marker}\nstartsecs=0\n")
    (tmp_path / "daemon.state").write_text("{not json")
    broken = subprocess.run(command_for("agent", conf, "-n"), capture_output=True, text=True,
                            timeout=30, cwd=tmp_path)
    assert broken.returncode == 2
    assert broken.stderr.startswith(f"Error: {tmp_path}/daemon.state: cannot read the state "
                                    "file:"), broken.stderr
    assert not marker.exists()


def test_supervisord_has_no_disable(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS, kind="supervisord")
    assert ctl(daemon, "cesi-agentctl", "disable", "web") == (
        1, f"ERROR: {daemon.url} cannot disable programs (it is not cesi-agentd)\n")


def test_the_cesi_methods_stay_unlisted(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(PROGRAMS)
    listed = server_proxy(daemon.url).system.listMethods()
    assert not [m for m in listed if m.startswith("cesi.")]
