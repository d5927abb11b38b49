"""One managed child and supervisord's state machine for it.

The transitions, their guards and the log lines are supervisord 4.3's. What differs is timing:
supervisord re-checks every process once a second in its poll loop; here each process asks its
host for a wake-up at its next deadline (startsecs, backoff delay, stopwaitsecs), so a state
changes the moment its condition holds and an idle agent does no work at all.

Everything that touches the OS goes through `ProcessHost`, so the machine can be driven by a
fake host in unit tests without forking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..supervisor_rpc.schema import running_description
from ..supervisor_rpc.states import RUNNING_STATES, STOPPED_STATES, ProcessState
from .config import ProcessConfig
from .datatypes import AutoRestart, signal_name
from .spawn import SpawnError


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


MIN_RESTART_INTERVAL = 1.0  # seconds: a crash loop's automatic restarts come this far apart

_S = ProcessState
TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    # supervisord 4.3's, as its _assertInState calls guard them
    _S.STOPPED: frozenset({_S.STARTING}),
    _S.STARTING: frozenset({_S.RUNNING, _S.BACKOFF, _S.STOPPING, _S.UNKNOWN}),
    _S.RUNNING: frozenset({_S.STOPPING, _S.EXITED, _S.UNKNOWN}),
    _S.BACKOFF: frozenset({_S.STARTING, _S.FATAL, _S.STOPPED}),
    _S.STOPPING: frozenset({_S.STOPPED, _S.UNKNOWN}),
    # EXITED -> STOPPED is ours: a stop while a crash loop waits out its pacing (below) ends
    # the loop; supervisord restarts at once, so it has no such wait to interrupt
    _S.EXITED: frozenset({_S.STARTING, _S.STOPPED}),
    _S.FATAL: frozenset({_S.STARTING}),
    # a child whose signal failed still exits some day: supervisord's finish() asserts there
    # (and leaves the process UNKNOWN for good); we record how it ended
    _S.UNKNOWN: frozenset({_S.STOPPED, _S.EXITED}),
}
"""Every change a process may make, from each state; any other is a bug, refused."""


class InvalidTransition(RuntimeError):
    """A change the state machine does not allow (the state is left as it was)."""


class ProcessHost(Protocol):
    """What a Process needs from its daemon."""

    def start_child(self, process: Process) -> int:
        """Create pipes and fork/exec; return the pid or raise SpawnError."""

    def send_signal(self, process: Process, pid: int, signum: int) -> None:
        """kill(2); raise OSError as kill does."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def monotonic(self) -> float: ...

    def accepting_starts(self) -> bool:
        """False while the daemon shuts down or restarts: no automatic (re)starts then."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def debug(self, message: str) -> None: ...

    def critical(self, message: str) -> None: ...

    def state_changed(self, process: Process, old: ProcessState, expected: bool) -> None:
        """Called after every transition (events, waiters)."""


def describe_exit(status: int) -> tuple[int, str]:
    """A waitpid status as supervisord reports it: (exit code or -1, `exit status N`/...)."""
    import os

    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return code, f"exit status {code}"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        message = f"terminated by {signal_name(signum)}"
        if os.WCOREDUMP(status):
            message += " (core dumped)"
        return -1, message
    return -1, f"unknown termination cause 0x{status:04x}"


class Process:
    """A single child process: its config, its state, and the rules that move it."""

    def __init__(self, config: ProcessConfig, host: ProcessHost) -> None:
        self.config = config
        self.host = host
        self.state = ProcessState.STOPPED
        self.pid = 0
        self.laststart = 0.0  # wall clock, reported as `start`
        self.laststop = 0.0  # wall clock, reported as `stop`
        self.spawnerr: str | None = None
        self.exitstatus: int | None = None
        self.backoff = 0
        self.killing = False
        self.administrative_stop = False
        self.system_stop = False
        self._started_at = 0.0  # monotonic, for startsecs
        self._deadline = 0.0  # monotonic: end of backoff or of stopwaitsecs
        self._timer: TimerHandle | None = None
        self.last_exit_expected = False
        self.last_pid = 0  # the pid a state event reports once the child is reaped
        self._quick_exits = 0  # exits in a row, each within MIN_RESTART_INTERVAL of its start
        self._stop_reported = float("-inf")  # monotonic time of the last `waiting for` line
        self.disabled = False  # `cesi-agentctl disable`: nothing starts it (see disabled.py)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def group(self) -> str:
        return self.config.group

    @property
    def namespec(self) -> str:
        return f"{self.group}:{self.name}"

    def __repr__(self) -> str:
        return f"<Process {self.namespec} {self.state.name} pid={self.pid}>"

    # -- transitions -----------------------------------------------------------------------

    def _change_state(self, new: ProcessState, expected: bool = True) -> None:
        old = self.state
        if new == old:
            return
        if new not in TRANSITIONS[old]:
            raise InvalidTransition(f"{self.namespec}: {old.name} -> {new.name} is not a "
                                    "change Supervisor makes")
        self.state = new
        if new == ProcessState.BACKOFF:
            self.backoff += 1
            self._deadline = self.host.monotonic() + self.backoff
            self._wake_at(self._deadline)
        self.host.state_changed(self, old, expected)

    def _wake_at(self, when: float) -> None:
        """Ask the host to call `transition` once `when` (monotonic) has passed."""
        self._cancel_timer()
        delay = max(0.0, when - self.host.monotonic())
        self._timer = self.host.call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self.transition()

    def _record_spawnerr(self, message: str) -> None:
        self.spawnerr = message
        self.host.info(f"spawnerr: {message}")

    def spawn(self) -> int | None:
        """Start the child; the pid, or None when it could not be started (now BACKOFF)."""
        if self.pid:
            self.host.warn(f"process '{self.name}' already running")
            return None
        self.killing = False
        self.spawnerr = None
        self.exitstatus = None
        self.system_stop = False
        self.administrative_stop = False
        self.laststart = time.time()
        self._started_at = self.host.monotonic()
        self._change_state(ProcessState.STARTING)
        try:
            pid = self.host.start_child(self)
        except SpawnError as exc:
            self._record_spawnerr(str(exc))
            self._change_state(ProcessState.BACKOFF)
            return None
        self.pid = pid
        self.host.info(f"spawned: '{self.name}' with pid {pid}")
        # strictly more than startsecs must pass: wake just after the boundary
        self._wake_at(self._started_at + self.config.startsecs + 1e-3)
        return pid

    def transition(self) -> None:
        """Apply whatever rule is due now: autostart, autorestart, RUNNING, retry, give up, kill."""
        now = self.host.monotonic()
        state = self.state
        if self.host.accepting_starts() and not self.disabled:
            if state == ProcessState.EXITED:
                restart = self.config.autorestart
                if restart == AutoRestart.ALWAYS or (
                    restart == AutoRestart.UNEXPECTED
                    and self.exitstatus not in self.config.exitcodes
                ):
                    # a crash loop restarts about once a second, as supervisord's one-second
                    # loop paces it, instead of spinning a core: after the second exit in a
                    # row within a second of its start, wait for that second to pass
                    if (self._quick_exits <= 1
                            or now - self._started_at >= MIN_RESTART_INTERVAL):
                        self.spawn()
                    else:
                        self._wake_at(self._started_at + MIN_RESTART_INTERVAL)
            elif state == ProcessState.STOPPED and not self.laststart:
                if self.config.autostart:
                    self.spawn()
            elif (
                state == ProcessState.BACKOFF
                and self.backoff <= self.config.startretries
                and now >= self._deadline
            ):
                self.spawn()
        if state == ProcessState.STARTING and self.state == ProcessState.STARTING:
            if now - self._started_at > self.config.startsecs:
                self._enter_running()
            else:
                self._wake_at(self._started_at + self.config.startsecs + 1e-3)
        if self.state == ProcessState.BACKOFF and self.backoff > self.config.startretries:
            self.give_up()
            self.host.info(
                f"gave up: {self.name} entered FATAL state, too many start retries too quickly"
            )
        elif self.state == ProcessState.STOPPING and now >= self._deadline:
            # a warning, as supervisord gives: the program ignored its stop signal
            self.host.warn(f"killing '{self.name}' ({self.pid}) with SIGKILL")
            self.kill(9)

    def _enter_running(self) -> None:
        self.backoff = 0
        self._change_state(ProcessState.RUNNING)
        self.host.info(f"success: {self.name} entered RUNNING state, process has stayed up for "
                       f"> than {self.config.startsecs} seconds (startsecs)")

    def stop_report(self) -> None:
        """`waiting for NAME to stop`, at most every two seconds, while a stop is awaited (as
        supervisord's stopProcess reports its wait)."""
        now = self.host.monotonic()
        if self.state == ProcessState.STOPPING and now >= self._stop_reported + 2:
            self.host.info(f"waiting for {self.name} to stop")
            self._stop_reported = now

    def give_up(self) -> None:
        self.backoff = 0
        self.system_stop = True
        self._cancel_timer()
        self._change_state(ProcessState.FATAL)

    @property
    def restart_pending(self) -> bool:
        """EXITED, with an automatic restart waiting out the crash-loop pacing."""
        return self.state == ProcessState.EXITED and self._timer is not None

    @property
    def stoppable(self) -> bool:
        """What a stop acts on: a child, its retries, or its pending automatic restart."""
        return self.running or self.restart_pending

    def stop(self) -> str | None:
        """Administrative stop: the stop signal, then SIGKILL after stopwaitsecs.

        A crash loop spends most of each second EXITED, waiting to be restarted; a stop then
        cancels the restart, so the loop ends on the first try and the program stays STOPPED.
        """
        self.administrative_stop = True
        if self.restart_pending:
            self._cancel_timer()
            self._quick_exits = 0
            self._change_state(ProcessState.STOPPED)
            self.host.info(f"stopped: {self.name} (its automatic restart was cancelled)")
            return None
        return self.kill(self.config.stopsignal)

    def kill(self, signum: int) -> str | None:
        """Signal the child meaning to end it; an error message, or None when sent."""
        if self.state == ProcessState.BACKOFF:
            self.host.debug(f"Attempted to kill {self.name}, which is in BACKOFF state.")
            self._cancel_timer()
            self._change_state(ProcessState.STOPPED)
            return None
        if not self.pid:
            message = (
                f"attempted to kill {self.name} with sig {signal_name(signum)} "
                "but it wasn't running"
            )
            self.host.debug(message)
            return message
        as_group = (
            self.config.killasgroup if self.state == ProcessState.STOPPING
            else self.config.stopasgroup
        )
        self.host.debug(
            f"killing {self.name} (pid {self.pid}) "
            f"{'process group ' if as_group else ''}with signal {signal_name(signum)}"
        )
        self.killing = True
        self._deadline = self.host.monotonic() + self.config.stopwaitsecs
        self._change_state(ProcessState.STOPPING)
        self._wake_at(self._deadline)
        failure = self._send(-self.pid if as_group else self.pid, signum, "killing", "just")
        if failure is not None:
            self._cancel_timer()
            self.killing = False
        return failure

    def signal(self, signum: int) -> str | None:
        """Send any signal without intending to stop (signalProcess)."""
        if not self.pid:
            message = (
                f"attempted to send {self.name} sig {signal_name(signum)} but it wasn't running"
            )
            self.host.debug(message)
            return message
        self.host.debug(f"sending {self.name} (pid {self.pid}) sig {signal_name(signum)}")
        return self._send(self.pid, signum, "sending sig", "just now")

    def _send(self, target: int, signum: int, doing: str, when: str) -> str | None:
        """Deliver a signal; a child already gone is only a debug line (it is being reaped),
        any other failure leaves the process UNKNOWN. `doing` and `when` keep supervisord's
        two wordings of these lines."""
        try:
            self.host.send_signal(self, target, signum)
        except ProcessLookupError:
            self.host.debug(
                f"unable to signal {self.name} (pid {self.pid}), it probably {when} exited "
                "on its own"
            )
        except OSError as exc:
            message = f"unknown problem {doing} {self.name} ({self.pid}):{exc}"
            self.host.critical(message)
            self._change_state(ProcessState.UNKNOWN)
            return message
        return None

    def finish(self, status: int) -> None:
        """The child was reaped with waitpid `status`: decide between STOPPED, BACKOFF, EXITED."""
        code, how = describe_exit(status)
        self.last_pid = self.pid
        now = self.host.monotonic()
        quick = now - self._started_at < MIN_RESTART_INTERVAL and not self.killing
        self._quick_exits = self._quick_exits + 1 if quick else 0
        self.laststop = time.time()
        too_quickly = now - self._started_at < self.config.startsecs
        expected = code in self.config.exitcodes
        self._cancel_timer()
        if self.killing:
            self.killing = False
            self.exitstatus = code
            message = f"stopped: {self.name} ({how})"
            (self.host.info if expected else self.host.warn)(message)
            self.pid = 0
            self._change_state(ProcessState.STOPPED)
        elif too_quickly and self.state == ProcessState.STARTING:
            self.exitstatus = None
            self.spawnerr = "Exited too quickly (process log may have details)"
            self.host.info(f"exited: {self.name} ({how}; not expected)")
            self.pid = 0
            self._change_state(ProcessState.BACKOFF)
        else:
            if self.state == ProcessState.STARTING:
                # past startsecs, the child exited before the timer said so: RUNNING first,
                # as supervisord's loop always sees it (a startsecs=0 program, say)
                self._enter_running()
            self.exitstatus = code
            self.pid = 0
            self.backoff = 0
            self.last_exit_expected = expected
            if expected:
                self.host.info(f"exited: {self.name} ({how}; expected)")
            else:
                self.spawnerr = f"Bad exit code {code}"
                self.host.warn(f"exited: {self.name} ({how}; not expected)")
            self._change_state(ProcessState.EXITED, expected)
        self.transition()

    # -- reporting -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def stopped(self) -> bool:
        return self.state in STOPPED_STATES

    def describe(self, now: float | None = None) -> str:
        """The `description` field of getProcessInfo, as supervisord words it (and
        `Disabled` for a disabled process that is not running)."""
        if self.disabled and not self.running:
            return "Disabled"
        if self.state == ProcessState.RUNNING:
            return running_description(self.pid, self.laststart,
                                       now if now is not None else time.time())
        if self.state in (ProcessState.FATAL, ProcessState.BACKOFF):
            return self.spawnerr or f'unknown error (try "tail {self.name}")'
        if self.state in (ProcessState.STOPPED, ProcessState.EXITED):
            if self.laststart:
                return time.strftime("%b %d %I:%M %p", time.localtime(self.laststop))
            return "Not started"
        return ""
