"""The daemon as a whole: shutdown, restart on SIGHUP, daemonizing, pidfile, flags and limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest

from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy
from tests.support.daemons import BASE, StartDaemon, program
from tests.support.procfs import alive
from tests.support.waiting import wait_for

TWO = """
[program:early]
command=sleep 100
priority=1
startsecs=0

[program:late]
command={ignore}
priority=2
startsecs=0
stopwaitsecs=1
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_orderly_shutdown_leaves_nothing(start_daemon: StartDaemon, signum: int) -> None:
    daemon = start_daemon(TWO.format(ignore=program("ignore_term.py")))
    pids = [daemon.wait_state(name, "RUNNING")["pid"] for name in ("early", "late")]
    wait_for(lambda: "ignoring SIGTERM" in daemon.child_log("late"))
    daemon.proc.send_signal(signum)
    assert daemon.proc.wait(30) == 0
    log = daemon.log()
    assert f"received {signal.Signals(signum).name} indicating exit request" in log
    # reverse priority, one group at a time: late (killed after stopwaitsecs) before early
    assert log.index("stopped: late (terminated by SIGKILL)") < log.index("stopped: early")
    assert not any(alive(pid) for pid in pids)
    assert not daemon.sock.exists() and not (daemon.dir / "daemon.pid").exists()


def test_shutdown_over_rpc(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("[program:p]\ncommand=sleep 100\nstartsecs=0\n")
    pid = daemon.wait_state("p", "RUNNING")["pid"]
    assert daemon.rpc().shutdown() is True
    assert daemon.proc.wait(30) == 0
    assert not alive(pid)


def test_shutdown_state_refuses_calls(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(TWO.format(ignore=program("ignore_term.py")).replace(
        "stopwaitsecs=1", "stopwaitsecs=3"))
    daemon.wait_state("late", "RUNNING")
    wait_for(lambda: "ignoring SIGTERM" in daemon.child_log("late"))
    daemon.rpc().shutdown()
    with pytest.raises(xmlrpc.client.Fault) as caught:
        daemon.rpc().getAllProcessInfo()
    assert (caught.value.faultCode, caught.value.faultString) == (6, "SHUTDOWN_STATE")
    assert daemon.proc.wait(30) == 0


def test_sighup_restarts_with_the_reread_config(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("[program:old]\ncommand=sleep 100\nstartsecs=0\n")
    old_pid = daemon.wait_state("old", "RUNNING")["pid"]
    daemon.conf.write_text(daemon.conf.read_text() + "\n[program:new]\ncommand=sleep 100\n"
                           "startsecs=0\n")
    daemon.proc.send_signal(signal.SIGHUP)
    new_info = wait_for(lambda: _try_info(daemon, "new"), what="the new program")
    assert new_info["statename"] in ("STARTING", "RUNNING")
    restarted = daemon.wait_state("old", "RUNNING")
    assert restarted["pid"] != old_pid and not alive(old_pid)
    assert "received SIGHUP indicating restart request" in daemon.log()
    assert daemon.proc.poll() is None


def test_sighup_with_a_broken_config_keeps_the_old_one(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("[program:old]\ncommand=sleep 100\nstartsecs=0\n")
    daemon.wait_state("old", "RUNNING")
    daemon.conf.write_text(daemon.conf.read_text() + "\n[program:bad]\ncommand=x\n"
                           "startsecs=never\n")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_log("could not reread config, keeping the previous one")
    assert "startsecs: not an integer: 'never'" in daemon.log()
    daemon.wait_state("old", "RUNNING")
    with pytest.raises(xmlrpc.client.Fault, match="BAD_NAME"):
        daemon.rpc().getProcessInfo("bad")


def _try_info(daemon: object, name: str) -> dict[str, object] | None:
    try:
        return daemon.info(name)  # type: ignore[attr-defined,no-any-return]
    except (OSError, xmlrpc.client.Error):
        return None


def test_daemonizes_without_nodaemon(tmp_path: Path) -> None:
    conf = tmp_path / "d.conf"
    conf.write_text(BASE.format(loglevel="info") + "[program:p]\ncommand=sleep 100\n"
                    "startsecs=0\n")
    result = subprocess.run([sys.executable, "-m", "cesi_like.agent.main", "-c", str(conf)],
                            cwd=tmp_path, timeout=30, capture_output=True)
    assert result.returncode == 0
    pidfile = tmp_path / "daemon.pid"
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    try:
        rpc = server_proxy(f"unix://{tmp_path}/daemon.sock", timeout=10).supervisor
        wait_for(lambda: _state_or_none(rpc) == "RUNNING")
        assert rpc.getPID() == pid
        child = wait_for(lambda: rpc.getProcessInfo("p")["pid"])
        assert os.getsid(pid) == pid  # a session leader, detached from our terminal
        rpc.shutdown()
        wait_for(lambda: not alive(pid), what="the daemon to exit")
        assert not alive(child)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _state_or_none(rpc: object) -> str | None:
    try:
        return rpc.getState()["statename"]  # type: ignore[attr-defined,no-any-return]
    except (OSError, xmlrpc.client.Error):
        return None


def test_flags_override_the_config(start_daemon: StartDaemon, tmp_path: Path) -> None:
    logfile = tmp_path / "elsewhere.log"
    daemon = start_daemon("[program:p]\ncommand=sleep 100\nstartsecs=0\n",
                          extra_args=("-n", "-i", "node-7", "-l", str(logfile), "-e", "debug"))
    assert daemon.rpc().getIdentification() == "node-7"
    daemon.wait_state("p", "RUNNING")
    daemon.rpc().stopProcess("p")
    assert "DEBG killing p" in logfile.read_text()
    assert not (daemon.dir / "main.log").exists()


def test_impossible_minfds_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "d.conf"
    conf.write_text(BASE.format(loglevel="info").replace(
        "[supervisord]\n", "[supervisord]\nminfds=2000000000\n"))
    result = subprocess.run([sys.executable, "-m", "cesi_like.agent.main", "-c", str(conf), "-n"],
                            cwd=tmp_path, timeout=30, capture_output=True, text=True)
    assert result.returncode == 2
    assert "minimum number of file descriptors required" in result.stderr


def test_a_live_socket_is_not_stolen(start_daemon: StartDaemon, tmp_path: Path) -> None:
    first = start_daemon("[program:p]\ncommand=sleep 100\n")
    result = subprocess.run(
        [sys.executable, "-m", "cesi_like.agent.main", "-c", str(first.conf), "-n"],
        cwd=tmp_path, timeout=30, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Another program is already listening" in result.stderr
    assert first.rpc().getState()["statename"] == "RUNNING"


def test_unix_socket_mode_is_0700_by_default(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("")
    assert daemon.sock.stat().st_mode & 0o777 == 0o700


def test_version_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "cesi_like.agent.main", "-v"],
                            capture_output=True, text=True, timeout=30, check=True)
    from cesi_like import __version__

    assert result.stdout.strip() == __version__


@pytest.mark.parametrize("flag", ["-h", "-?", "--help"])
def test_help_flags_as_supervisord_takes_them(flag: str) -> None:
    for command in ([sys.executable, "-m", "cesi_like.agent.main"],
                    [os.path.join(os.path.dirname(sys.executable), "supervisord")]):
        result = subprocess.run([*command, flag], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and "-c" in result.stdout, (command, result)


def test_finds_supervisord_conf_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "supervisord.conf").write_text(BASE.format(loglevel="info"))
    agent = subprocess.Popen([sys.executable, "-m", "cesi_like.agent.main", "-n"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        rpc = server_proxy(f"unix://{tmp_path}/daemon.sock", timeout=10).supervisor
        assert wait_for(lambda: _state_or_none(rpc)) == "RUNNING"
    finally:
        agent.terminate()
        assert agent.wait(30) == 0


def test_no_config_anywhere_is_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cesi_like.agent.main", "-n"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 2:  # a machine-wide /etc/supervisord.conf would be found first
        pytest.skip("this machine has a supervisord.conf in a default location")
    assert "No config file found at default paths" in result.stderr


def test_an_rpc_plugin_it_cannot_host_is_said_once_at_start(start_daemon: StartDaemon) -> None:
    """#18.5: `[rpcinterface:x]` plugins (supervisor_twiddler and the like) were accepted
    without a word, and every call of theirs answered UNKNOWN_METHOD."""
    daemon = start_daemon(
        "[rpcinterface:twiddler]\nsupervisor.rpcinterface_factory = "
        "supervisor_twiddler.rpcinterface:make_twiddler_rpcinterface\n"
        "[program:a]\ncommand=sleep 100\nstartsecs=0\n")
    daemon.wait_state("a", "RUNNING")
    warned = [line for line in daemon.log().splitlines() if "[rpcinterface:" in line]
    assert len(warned) == 1 and " WARN " in warned[0], warned
    assert ("[rpcinterface:twiddler] (supervisor_twiddler.rpcinterface:"
            "make_twiddler_rpcinterface) is an RPC interface plugin") in warned[0]
    with pytest.raises(xmlrpc.client.Fault) as unknown:
        server_proxy(daemon.url).twiddler.getAPIVersion()
    assert unknown.value.faultCode == 1  # UNKNOWN_METHOD


def test_a_storm_of_sighups_is_two_restarts_and_the_last_config_wins(
        start_daemon: StartDaemon) -> None:
    """#18.10: 50 SIGHUPs in 5 s restarted the agent 27-39 times (thousands of program
    restarts); supervisord coalesces them into two. Signals that arrive during a restart now
    give one more, once they are quiet: two restarts, the second with the config of the last
    signal."""
    daemon = start_daemon("[program:worker]\ncommand=sleep 1000\nprocess_name=w%(process_num)s"
                          "\nnumprocs=5\n")
    for index in range(5):
        daemon.wait_state(f"worker:w{index}", "RUNNING")
    base = daemon.conf.read_text()
    for round_ in range(50):
        daemon.conf.write_text(base.replace("sleep 1000", f"sleep {1000 + round_}"))
        daemon.proc.send_signal(signal.SIGHUP)
        time.sleep(0.05)  # the storm's own pace: the thing under test, not a wait for it

    def last_config_running() -> bool:
        try:
            pid = daemon.info("worker:w0")["pid"]
            return ("sleep 1049" in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
                    and daemon.state("worker:w4") == "RUNNING")
        except (xmlrpc.client.Fault, OSError):
            return False  # between two generations: SHUTDOWN_STATE, or no socket yet

    wait_for(last_config_running, 30, "the last config running")
    generations = daemon.log().count("RPC interface 'supervisor' initialized")
    assert generations == 3, daemon.log()[-3000:]  # the start, then two restarts


def test_the_umask_applies_as_supervisords_does(start_daemon: StartDaemon) -> None:
    """#18.10: with umask=000 the agent wrote its pidfile 0666 in the foreground; supervisord
    sets its umask only when it goes into the background, so the shell's applies (0644)."""
    modes = {}
    old = os.umask(0o022)
    try:
        for kind in ("supervisord", "agent"):
            daemon = start_daemon("", kind=kind, extra_args=("-n", "-m", "000"))
            modes[kind] = (daemon.dir / "daemon.pid").stat().st_mode & 0o777
    finally:
        os.umask(old)
    assert modes["agent"] == modes["supervisord"] == 0o644
