"""Real daemons (cesi-agentd, or supervisord as the reference) in tmp dirs, and the test
programs they run."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cesi_like.supervisor_rpc.xmlrpc_client import server_proxy

from .procfs import alive
from .waiting import wait_for

__all__ = ["wait_for"]  # with the daemons, as most of their tests wait on them

PROGRAMS = Path(__file__).parent / "programs"
PY = sys.executable


def program(name: str, *args: object) -> str:
    """A `command=` value running one of the test programs with this interpreter."""
    return " ".join([PY, str(PROGRAMS / name), *map(str, args)])


BASE = """\
[supervisord]
logfile=%(here)s/main.log
pidfile=%(here)s/daemon.pid
childlogdir=%(here)s
loglevel={loglevel}

[unix_http_server]
file=%(here)s/daemon.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/daemon.sock
"""


@dataclass
class Daemon:
    """A running cesi-agentd or supervisord and handy ways to look at it."""

    kind: str
    dir: Path
    conf: Path
    proc: subprocess.Popen[bytes]
    seen_pids: set[int] = field(default_factory=set)

    @property
    def sock(self) -> Path:
        return self.dir / "daemon.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def rpc(self, timeout: float = 30.0) -> Any:
        return server_proxy(self.url, timeout=timeout).supervisor

    def info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.rpc().getProcessInfo(name)
        if info["pid"]:
            self.seen_pids.add(info["pid"])
        return info

    def state(self, name: str) -> str:
        return str(self.info(name)["statename"])

    def wait_state(self, name: str, statename: str, timeout: float = 15.0) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (info := self.info(name))["statename"] == statename and info,
            timeout,
            f"{name} to be {statename} (is {self.state(name)})",
        )

    def log(self) -> str:
        path = self.dir / "main.log"
        return path.read_text() if path.exists() else ""

    def wait_log(self, text: str, timeout: float = 15.0) -> str:
        return wait_for(lambda: text in (log := self.log()) and log, timeout,  # type: ignore[no-any-return]
                        f"{text!r} in the main log")

    def child_log(self, name: str, channel: str = "stdout") -> str:
        path = self.info(name)[f"{channel}_logfile"]
        return Path(path).read_text() if path and Path(path).exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for an orderly exit; returns the exit code."""
        if self.proc.poll() is None:
            try:
                for info in self.rpc(timeout=5).getAllProcessInfo():
                    if info["pid"]:
                        self.seen_pids.add(info["pid"])
            except (OSError, xmlrpc.client.Error):
                pass
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def leftover_pids(self) -> list[int]:
        return [pid for pid in self.seen_pids if alive(pid)]


def command_for(kind: str, conf: Path, *extra: str) -> list[str]:
    if kind == "agent":
        return [PY, "-m", "cesi_like.agent.main", "-c", str(conf), *extra]
    return [PY, "-m", "supervisor.supervisord", "-c", str(conf), *extra]


StartDaemon = Callable[..., Daemon]


@contextlib.contextmanager
def daemons(tmp_path: Path) -> Iterator[StartDaemon]:
    """start(programs_ini, kind="agent"|"supervisord") -> a ready Daemon; all are stopped on
    exit, and any child process they leave behind fails the test."""
    started: list[Daemon] = []

    def start(
        programs: str,
        kind: str = "agent",
        loglevel: str = "info",
        extra_args: tuple[str, ...] = ("-n",),
        name: str | None = None,
        wait: bool = True,
        open_files: int | None = None,
    ) -> Daemon:
        """`open_files`: the daemon's RLIMIT_NOFILE (soft and hard), else the tests' own."""
        directory = tmp_path / (name or f"{kind}{len(started)}")
        directory.mkdir()
        conf = directory / "daemon.conf"
        conf.write_text(BASE.format(loglevel=loglevel) + programs)
        with open(directory / "stdout.txt", "wb") as out:
            proc = subprocess.Popen(
                command_for(kind, conf, *extra_args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=directory,
                preexec_fn=None if open_files is None else lambda: resource.setrlimit(
                    resource.RLIMIT_NOFILE, (open_files, open_files)),
            )
        daemon = Daemon(kind, directory, conf, proc)
        started.append(daemon)
        if wait:
            wait_for(lambda: _answers(daemon), 20, f"{kind} to answer on {daemon.sock}")
        return daemon

    try:
        yield start
    finally:
        leftovers = []
        for daemon in started:
            try:
                daemon.stop()
            finally:
                leftovers += daemon.leftover_pids()
                for pid in daemon.leftover_pids():
                    os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[StartDaemon]:
    with daemons(tmp_path) as start:
        yield start


def _answers(daemon: Daemon) -> bool:
    if daemon.proc.poll() is not None:
        output = (daemon.dir / "stdout.txt").read_text()
        raise AssertionError(f"{daemon.kind} exited with {daemon.proc.returncode}:\n{output}")
    try:
        return daemon.rpc(timeout=2).getState()["statename"] == "RUNNING"  # type: ignore[no-any-return]
    except (OSError, xmlrpc.client.Error):
        return False
