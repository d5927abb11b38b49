"""cesi-agentctl on its own: connection errors, auth, and the interactive shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.daemons import StartDaemon
from tests.support.waiting import wait_for


def agentctl(*args: str, stdin: str | None = None, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cesi_like.agent.ctl", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)


def test_missing_socket_and_refused_connection(tmp_path: Path) -> None:
    missing = agentctl("-s", f"unix://{tmp_path}/none.sock", "status")
    expected = f"unix://{tmp_path}/none.sock no such file\n"
    assert (missing.returncode, missing.stdout) == (4, expected)
    refused = agentctl("-s", "http://127.0.0.1:1", "status")
    assert (refused.returncode, refused.stdout) == (4, "http://127.0.0.1:1 refused connection\n")
    stopped = agentctl("-s", f"unix://{tmp_path}/none.sock", "stop", "x")
    assert stopped.returncode == 7


def test_authentication(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("[unix_http_server]\nusername=u\npassword=p\n", wait=False)
    wait_for(daemon.sock.exists, what="the socket")
    url = daemon.url
    anonymous = agentctl("-s", url, "pid")
    assert (anonymous.returncode, anonymous.stdout) == (1, "Server requires authentication\n")
    good = agentctl("-s", url, "-u", "u", "-p", "p", "pid")
    assert good.returncode == 0 and good.stdout.strip() == str(daemon.proc.pid)


def test_interactive_shell_runs_status_first(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    daemon = start_daemon("[program:p]\ncommand=sleep 100\nstartsecs=0\n")
    daemon.wait_state("p", "RUNNING")
    result = agentctl("-c", str(daemon.conf), "-r", str(tmp_path / "history"),
                      stdin="pid p\nbogus\nhelp stop\nquit\n")
    assert result.returncode == 0
    lines = result.stdout.split("supervisor> ")
    assert lines[0].startswith("p ") and "RUNNING" in lines[0]
    assert lines[1].strip() == str(daemon.info("p")["pid"])
    assert lines[2] == "*** Unknown syntax: bogus\n"
    assert lines[3].startswith("stop <name>")


def test_one_command_with_interactive_flag_continues_in_the_shell(
    start_daemon: StartDaemon
) -> None:
    daemon = start_daemon("[program:p]\ncommand=sleep 100\nstartsecs=0\nautostart=false\n")
    result = agentctl("-c", str(daemon.conf), "-i", "start", "p", stdin="quit\n")
    assert result.stdout.startswith("p: started\n")
    assert "supervisor> " in result.stdout
