"""A `ProcessHost` with no OS behind it: a manual clock, recorded spawns, signals and log
lines, so the state machine runs in microseconds and without sub-second wall-clock windows."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cesi_like.agent.config import ProcessConfig, load
from cesi_like.agent.process import Process
from cesi_like.agent.spawn import SpawnError
from cesi_like.supervisor_rpc.states import ProcessState


class Timer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeHost:
    """Drive it with `advance(seconds)`; `exit(process, code)` plays a child's exit."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self.spawns: list[tuple[int, float]] = []  # (pid, when)
        self.signals: list[tuple[int, int]] = []  # (pid, signum)
        self.changes: list[tuple[ProcessState, ProcessState, bool]] = []
        self.lines: list[str] = []
        self.spawn_error: str | None = None  # the next spawns fail with this
        self.signal_error: OSError | None = None  # the next signals fail with this
        self.starts_allowed = True
        self._pids = itertools.count(100)

    # -- ProcessHost -----------------------------------------------------------------------

    def start_child(self, process: Process) -> int:
        if self.spawn_error is not None:
            raise SpawnError(self.spawn_error)
        pid = next(self._pids)
        self.spawns.append((pid, self.now))
        return pid

    def send_signal(self, process: Process, pid: int, signum: int) -> None:
        if self.signal_error is not None:
            raise self.signal_error
        self.signals.append((pid, signum))

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.now + delay, callback)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        return timer

    def monotonic(self) -> float:
        return self.now

    def accepting_starts(self) -> bool:
        return self.starts_allowed

    def info(self, message: str) -> None:
        self.lines.append(f"INFO {message}")

    def warn(self, message: str) -> None:
        self.lines.append(f"WARN {message}")

    def debug(self, message: str) -> None:
        self.lines.append(f"DEBG {message}")

    def critical(self, message: str) -> None:
        self.lines.append(f"CRIT {message}")

    def state_changed(self, process: Process, old: ProcessState, expected: bool) -> None:
        self.changes.append((old, process.state, expected))

    # -- driving ---------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock, firing each timer that falls due, in order, at its time."""
        end = self.now + seconds
        self.until(lambda: False, seconds)
        self.now = end

    def until(self, done: Callable[[], bool], limit: float = 60.0) -> None:
        """Fire timers one at a time, each at its time, until `done()` (or `limit` s)."""
        end = self.now + limit
        while not done() and self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self.now = max(self.now, when)
                timer.callback()

    def exit(self, process: Process, code: int = 0, signum: int = 0) -> None:
        """The child was reaped: with exit `code`, or killed by `signum`."""
        process.finish(signum if signum else code << 8)

    def states(self) -> list[str]:
        return [new.name for _, new, _ in self.changes]


def process_config(tmp_path: Path, **keys: Any) -> ProcessConfig:
    """A `[program:p]` with supervisord's defaults and `keys`, through the real config reader."""
    conf = tmp_path / "p.conf"
    lines = "".join(f"{key}={value}\n" for key, value in {"command": "/bin/true", **keys}.items())
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/main.log\n[program:p]\n{lines}")
    return load(str(conf)).groups[0].processes[0]


def make(tmp_path: Path, **keys: Any) -> tuple[Process, FakeHost]:
    host = FakeHost()
    return Process(process_config(tmp_path, **keys), host), host
