"""The state machine with real children: every transition and every key that changes behaviour."""

from __future__ import annotations

import json
import os
import re
import signal
import xmlrpc.client
from pathlib import Path

import pytest

from tests.support.daemons import StartDaemon, program
from tests.support.procfs import alive
from tests.support.waiting import wait_for


def spawn_count(log: str, name: str) -> int:
    return len(re.findall(rf"spawned: '{re.escape(name)}' with pid", log))


def test_quick_exit_goes_backoff_then_fatal(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:quick]
command=/bin/sh -c "exit 0"
startsecs=5
startretries=2
""")
    info = daemon.wait_state("quick", "FATAL")
    assert info["spawnerr"] == "Exited too quickly (process log may have details)"
    assert info["description"] == "Exited too quickly (process log may have details)"
    log = daemon.log()
    assert spawn_count(log, "quick") == 3  # the first try and startretries=2 retries
    assert log.count("exited: quick (exit status 0; not expected)") == 3
    assert "gave up: quick entered FATAL state, too many start retries too quickly" in log


def test_backoff_is_visible_between_retries(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:quick]
command=/bin/sh -c "exit 1"
startretries=1
""")
    info = daemon.wait_state("quick", "BACKOFF")
    assert info["spawnerr"].startswith("Exited too quickly")
    daemon.wait_state("quick", "FATAL")


def test_crash_after_startsecs_is_restarted(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:crashy]
command={program("exit_with.py", 3, 1.3)}
startsecs=1
""")
    first = daemon.wait_state("crashy", "RUNNING")
    daemon.wait_log("exited: crashy (exit status 3; not expected)")
    wait_for(lambda: spawn_count(daemon.log(), "crashy") >= 2, what="a second spawn")
    second = daemon.wait_state("crashy", "RUNNING")
    assert second["pid"] != first["pid"]


def test_expected_exit_stays_exited(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:once]
command={program("exit_with.py", 0, 0.3)}
startsecs=0
""")
    info = daemon.wait_state("once", "EXITED")
    assert info["exitstatus"] == 0 and info["spawnerr"] == ""
    assert "exited: once (exit status 0; expected)" in daemon.log()
    assert spawn_count(daemon.log(), "once") == 1


def test_exitcodes_make_a_code_expected(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:three]
command={program("exit_with.py", 3, 0.2)}
startsecs=0
exitcodes=0,3
""")
    assert daemon.wait_state("three", "EXITED")["exitstatus"] == 3
    assert "exited: three (exit status 3; expected)" in daemon.log()


def test_autorestart_true_restarts_even_expected_exits(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:again]
command={program("exit_with.py", 0, 0.2)}
startsecs=0
autorestart=true
""")
    wait_for(lambda: spawn_count(daemon.log(), "again") >= 3, what="three spawns")
    assert "exited: again (exit status 0; expected)" in daemon.log()


def test_autorestart_false_never_restarts(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:never]
command={program("exit_with.py", 4, 0.2)}
startsecs=0
autorestart=false
""")
    info = daemon.wait_state("never", "EXITED")
    assert info["exitstatus"] == 4 and info["spawnerr"] == "Bad exit code 4"
    assert "exited: never (exit status 4; not expected)" in daemon.log()
    assert spawn_count(daemon.log(), "never") == 1


def test_stop_escalates_to_sigkill_after_stopwaitsecs(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:stubborn]
command={program("ignore_term.py")}
startsecs=0
stopwaitsecs=1
""")
    daemon.wait_state("stubborn", "RUNNING")
    wait_for(lambda: "ignoring SIGTERM" in daemon.child_log("stubborn"))
    assert daemon.rpc().stopProcess("stubborn") is True
    info = daemon.info("stubborn")
    assert info["statename"] == "STOPPED" and info["exitstatus"] == -1
    assert "stopped: stubborn (terminated by SIGKILL)" in daemon.log()


def test_stopping_state_is_reported_while_waiting(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:stubborn]
command={program("ignore_term.py")}
startsecs=0
stopwaitsecs=2
""")
    daemon.wait_state("stubborn", "RUNNING")
    wait_for(lambda: "ignoring SIGTERM" in daemon.child_log("stubborn"))
    assert daemon.rpc().stopProcess("stubborn", False) is True
    assert daemon.state("stubborn") == "STOPPING"
    daemon.wait_state("stubborn", "STOPPED")


@pytest.mark.parametrize(("stopsignal", "expected"), [("INT", "SIGINT"), ("HUP", "SIGHUP"),
                                                      ("KILL", "SIGKILL")])
def test_stopsignal(start_daemon: StartDaemon, stopsignal: str, expected: str) -> None:
    daemon = start_daemon(f"""
[program:p]
command=sleep 100
startsecs=0
stopsignal={stopsignal}
""")
    daemon.wait_state("p", "RUNNING")
    daemon.rpc().stopProcess("p")
    assert f"stopped: p (terminated by {expected})" in daemon.log()


@pytest.mark.parametrize("as_group", [True, False])
def test_stopasgroup_leaves_no_orphan(
    start_daemon: StartDaemon, tmp_path: Path, as_group: bool
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    daemon = start_daemon(f"""
[program:tree]
command={program("tree.py", pidfile)}
startsecs=0
stopasgroup={"true" if as_group else "false"}
""")
    daemon.wait_state("tree", "RUNNING")
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text()))
    daemon.rpc().stopProcess("tree")
    try:
        if as_group:
            wait_for(lambda: not alive(grandchild), what="the grandchild to die")
        else:  # supervisord's default: only the direct child is signalled
            assert alive(grandchild)
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_numprocs_and_process_name(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:w]
command=sleep 100
process_name=%(program_name)s_%(process_num)02d
numprocs=3
numprocs_start=1
startsecs=0
""")
    infos = daemon.rpc().getAllProcessInfo()
    assert [(i["group"], i["name"]) for i in infos] == [("w", "w_01"), ("w", "w_02"),
                                                        ("w", "w_03")]
    for name in ("w:w_01", "w:w_02", "w:w_03"):
        daemon.wait_state(name, "RUNNING")


def test_heterogeneous_group(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[group:g]
programs=a,b

[program:a]
command=sleep 100
startsecs=0

[program:b]
command=sleep 100
startsecs=0
autostart=false
""")
    daemon.wait_state("g:a", "RUNNING")
    assert daemon.info("g:b")["description"] == "Not started"
    results = daemon.rpc().startProcess("g:*")
    assert results == [{"name": "b", "group": "g", "status": 80, "description": "OK"}]
    daemon.wait_state("g:b", "RUNNING")


def test_priority_orders_start_and_reverse_stop(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:last]
command=sleep 100
priority=900
startsecs=0

[program:first]
command=sleep 100
priority=1
startsecs=0

[program:middle]
command=sleep 100
priority=50
startsecs=0
""")
    for name in ("first", "middle", "last"):
        daemon.wait_state(name, "RUNNING")
    spawned = re.findall(r"spawned: '(\w+)'", daemon.log())
    assert spawned == ["first", "middle", "last"]
    assert daemon.stop() == 0
    stopped = re.findall(r"stopped: (\w+) \(", daemon.log())
    assert stopped == ["last", "middle", "first"]


def test_autostart_false_waits_for_start(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:manual]
command=sleep 100
autostart=false
startsecs=1
""")
    info = daemon.info("manual")
    assert (info["statename"], info["description"], info["start"]) == ("STOPPED",
                                                                        "Not started", 0)
    assert daemon.rpc().startProcess("manual") is True  # waits past startsecs
    assert daemon.state("manual") == "RUNNING"
    with pytest.raises(xmlrpc.client.Fault, match="ALREADY_STARTED: manual"):
        daemon.rpc().startProcess("manual")


def test_child_environment_directory_umask_and_fds(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    daemon = start_daemon(f"""
[program:report]
command={program("report.py")}
directory={tmp_path}
umask=027
environment=GREETING="hello, world",EMPTY=""
startsecs=0
""")
    daemon.wait_state("report", "RUNNING")
    line = wait_for(lambda: daemon.child_log("report").strip())
    report = json.loads(line)
    env = report["env"]
    assert env["GREETING"] == "hello, world" and env["EMPTY"] == ""
    assert env["SUPERVISOR_ENABLED"] == "1"
    assert env["SUPERVISOR_PROCESS_NAME"] == "report"
    assert env["SUPERVISOR_GROUP_NAME"] == "report"
    assert env["SUPERVISOR_SERVER_URL"] == f"unix://{daemon.sock}"
    assert report["cwd"] == str(tmp_path) and report["umask"] == 0o27
    assert report["pgid"] == report["pid"]  # its own process group
    # nothing of the daemon's leaks: stdin/stdout/stderr, plus the fd listdir itself opened
    assert report["fds"] == [0, 1, 2, 3]


@pytest.mark.skipif(os.getuid() != 0, reason="switching user needs root")
def test_user_switch(start_daemon: StartDaemon) -> None:
    import pwd

    daemon = start_daemon("""
[program:whoami]
command=/bin/sh -c "id -u; id -g; sleep 100"
user=nobody
startsecs=0
""")
    daemon.wait_state("whoami", "RUNNING")
    output = wait_for(lambda: len(daemon.child_log("whoami").split()) == 2 and
                      daemon.child_log("whoami"))
    entry = pwd.getpwnam("nobody")
    assert output.split() == [str(entry.pw_uid), str(entry.pw_gid)]


def test_missing_command_is_fatal_with_supervisords_message(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:ghost]
command=/nonexistent/program --flag
startretries=1
""")
    info = daemon.wait_state("ghost", "FATAL")
    assert info["spawnerr"] == "can't find command '/nonexistent/program'"
    assert "spawnerr: can't find command '/nonexistent/program'" in daemon.log()
    with pytest.raises(xmlrpc.client.Fault) as caught:
        daemon.rpc().startProcess("ghost")
    assert caught.value.faultCode == 20
    assert caught.value.faultString == "NO_FILE: can't find command '/nonexistent/program'"


def test_not_executable_is_fatal(start_daemon: StartDaemon, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nsleep 100\n")
    daemon = start_daemon(f"""
[program:noexec]
command={script}
startretries=0
""")
    info = daemon.wait_state("noexec", "FATAL")
    assert info["spawnerr"] == f"command at '{script}' is not executable"
    with pytest.raises(xmlrpc.client.Fault, match="NOT_EXECUTABLE"):
        daemon.rpc().startProcess("noexec")


def test_bad_directory_fails_in_the_child_like_supervisord(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:lost]
command=sleep 100
directory=/nonexistent/dir
startretries=1
""")
    daemon.wait_state("lost", "FATAL")
    stderr = daemon.child_log("lost", "stderr")
    assert "supervisor: couldn't chdir to /nonexistent/dir: ENOENT" in stderr
    assert "supervisor: child process was not spawned" in stderr
    assert "exited: lost (exit status 127; not expected)" in daemon.log()


def test_stopping_a_backoff_process_stops_it_without_a_signal(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:flappy]
command=/bin/sh -c "exit 1"
startretries=100
""")
    daemon.wait_state("flappy", "BACKOFF")
    assert daemon.rpc().stopProcess("flappy") is True
    assert daemon.state("flappy") == "STOPPED"


def test_send_stdin(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:echo]
command={program("echo_stdin.py")}
startsecs=0
""")
    daemon.wait_state("echo", "RUNNING")
    assert daemon.rpc().sendProcessStdin("echo", "hello\n") is True
    wait_for(lambda: "got: hello" in daemon.child_log("echo"))


def test_no_zombies_after_many_exits(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:blink]
command={program("exit_with.py", 0)}
process_name=%(program_name)s_%(process_num)d
numprocs=5
startsecs=0
autorestart=true
""")
    wait_for(lambda: spawn_count(daemon.log(), "blink_4") >= 5, what="many restarts")
    daemon.rpc().stopAllProcesses()
    children = Path(f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children").read_text()
    for pid in children.split():
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        assert state != "Z", f"zombie child {pid}"


def test_killasgroup_kills_the_group_when_stopwaitsecs_runs_out(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    daemon = start_daemon(f"""
[program:tree]
command={program("tree.py", pidfile, "ignore-term")}
startsecs=0
stopwaitsecs=1
killasgroup=true
""")
    daemon.wait_state("tree", "RUNNING")
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text()))
    try:
        daemon.rpc().stopProcess("tree")
        assert "stopped: tree (terminated by SIGKILL)" in daemon.log()
        wait_for(lambda: not alive(grandchild), what="the grandchild to be killed")
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_program_serverurl_and_daemon_environment_reach_the_child(
    start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(f"""
[supervisord]
environment=FROM_DAEMON="yes",SHARED="daemon"

[program:report]
command={program("report.py")}
serverurl=http://elsewhere.example:9001
environment=SHARED="program"
startsecs=0
""")
    daemon.wait_state("report", "RUNNING")
    env = json.loads(wait_for(lambda: daemon.child_log("report").strip()))["env"]
    assert env["SUPERVISOR_SERVER_URL"] == "http://elsewhere.example:9001"
    assert env["FROM_DAEMON"] == "yes" and env["SHARED"] == "program"
