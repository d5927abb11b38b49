"""Every transition of the process state machine, on a fake host (manual clock, recorded
spawns and signals): supervisord 4.3's rules and log lines, in microseconds, with no fork and
no wall-clock window. The real-process and differential tests run on top of these."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from cesi_like.agent.process import TRANSITIONS, InvalidTransition
from cesi_like.supervisor_rpc.states import ProcessState as S
from tests.support.fakehost import FakeHost, make

Scenario = Callable[[Path], FakeHost]
SCENARIOS: dict[str, Scenario] = {}


def scenario(function: Scenario) -> Scenario:
    SCENARIOS[function.__name__] = function
    return function


@scenario
def autostart_then_running(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=1)
    process.transition()
    host.advance(0.9)
    assert host.states() == ["STARTING"]
    host.advance(0.2)  # strictly more than startsecs
    assert host.states() == ["STARTING", "RUNNING"] and process.pid == 100
    assert host.lines[-1] == ("INFO success: p entered RUNNING state, process has stayed up "
                              "for > than 1 seconds (startsecs)")
    return host


@scenario
def too_quick_exits_back_off_then_fatal(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=10, startretries=2)
    process.transition()
    exits = []
    for _ in range(3):
        host.advance(0.1)
        host.exit(process, 1)
        exits.append(host.now)
        assert process.spawnerr == "Exited too quickly (process log may have details)"
        host.advance(5)
    assert host.states() == ["STARTING", "BACKOFF", "STARTING", "BACKOFF", "STARTING",
                             "BACKOFF", "FATAL"]
    starts = [when for _, when in host.spawns]
    # the backoff grows by a second a try: 1 s, then 2 s after the exit
    assert [round(start - end, 3) for end, start in zip(exits, starts[1:], strict=False)
            ] == [1.0, 2.0]
    assert "INFO gave up: p entered FATAL state, too many start retries too quickly" \
        in host.lines
    process.spawn()  # FATAL -> STARTING by hand (startProcess)
    assert process.state == S.STARTING
    return host


@scenario
def spawn_error_backs_off(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path)
    host.spawn_error = "can't find command 'nope'"
    assert process.spawn() is None
    assert host.states() == ["STARTING", "BACKOFF"]
    assert process.spawnerr == "can't find command 'nope'"
    assert "INFO spawnerr: can't find command 'nope'" in host.lines
    process.stop()  # a stop in BACKOFF ends the retries at once
    assert host.states()[-1] == "STOPPED" and not host.signals
    return host


@scenario
def stop_a_running_process(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0)
    process.spawn()
    host.advance(0.01)
    assert process.stop() is None
    assert host.signals == [(100, signal.SIGTERM)] and process.state == S.STOPPING
    host.exit(process, signum=signal.SIGTERM)
    assert host.states() == ["STARTING", "RUNNING", "STOPPING", "STOPPED"]
    # supervisord warns: a signal is not one of the exitcodes
    assert host.lines[-1] == "WARN stopped: p (terminated by SIGTERM)"
    return host


@scenario
def a_stop_ignored_for_stopwaitsecs_is_a_sigkill(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, stopwaitsecs=3)
    process.spawn()
    host.advance(0.01)
    process.stop()
    host.advance(2.9)
    assert host.signals == [(100, signal.SIGTERM)]
    host.advance(0.2)
    assert host.signals == [(100, signal.SIGTERM), (100, signal.SIGKILL)]
    assert "WARN killing 'p' (100) with SIGKILL" in host.lines
    host.exit(process, signum=signal.SIGKILL)
    assert process.state == S.STOPPED
    return host


@scenario
def a_stop_while_starting(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=5)
    process.spawn()
    process.stop()
    host.exit(process, signum=signal.SIGTERM)
    assert host.states() == ["STARTING", "STOPPING", "STOPPED"]
    host.advance(10)  # the startsecs timer is gone with the child
    assert host.states()[-1] == "STOPPED"
    return host


@scenario
def an_expected_exit_stays_exited(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, autorestart="unexpected", exitcodes="0,2")
    process.spawn()
    host.advance(5)
    host.exit(process, 2)
    host.advance(5)
    assert host.states() == ["STARTING", "RUNNING", "EXITED"]
    assert host.changes[-1] == (S.RUNNING, S.EXITED, True)
    assert host.lines[-1] == "INFO exited: p (exit status 2; expected)"
    return host


@scenario
def an_unexpected_exit_is_restarted(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, autorestart="unexpected")
    process.spawn()
    host.advance(5)
    host.exit(process, 3)
    assert host.changes[2] == (S.RUNNING, S.EXITED, False)
    # restarted at once: the new child has no spawn error yet
    assert process.state == S.STARTING and process.spawnerr is None
    host.advance(0.01)
    assert host.states() == ["STARTING", "RUNNING", "EXITED", "STARTING", "RUNNING"]
    assert "WARN exited: p (exit status 3; not expected)" in host.lines
    return host


@scenario
def a_crash_loop_restarts_once_a_second(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, autorestart="true")
    process.spawn()
    for count in range(1, 7):  # each child dies 10 ms after its start
        host.advance(0.01)
        host.exit(process, 1)
        host.until(lambda n=count: len(host.spawns) > n)  # type: ignore[misc]
    starts = [when for _, when in host.spawns]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(starts)]
    assert gaps[0] == 0.01  # a one-off crash is restarted at once
    assert all(gap == 1.0 for gap in gaps[1:]), gaps  # a loop: a second apart
    return host


@scenario
def a_stop_ends_a_crash_loop_while_it_waits(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, autorestart="true")
    process.spawn()
    for _ in range(2):  # the second quick exit in a row waits out the pacing
        host.advance(0.01)
        host.exit(process, 1)
    assert process.state == S.EXITED and process.restart_pending and process.stoppable
    assert process.stop() is None  # not "not running": the restart is what it stops
    assert process.state == S.STOPPED and not process.restart_pending
    assert host.lines[-1] == "INFO stopped: p (its automatic restart was cancelled)"
    host.advance(5)
    assert host.states()[-2:] == ["EXITED", "STOPPED"] and len(host.spawns) == 2
    return host


@scenario
def a_disabled_crash_loop_is_never_restarted(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, autorestart="true", autostart="true")
    process.spawn()
    host.advance(0.01)
    process.disabled = True  # as cesi.disableProcess sets it, then stops what is running
    host.exit(process, 1)
    host.advance(5)
    assert host.states() == ["STARTING", "RUNNING", "EXITED"] and len(host.spawns) == 1
    assert process.describe() == "Disabled"
    return host


@scenario
def no_automatic_start_while_shutting_down(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0, autorestart="true")
    process.spawn()
    host.advance(5)
    host.starts_allowed = False
    host.exit(process, 1)
    host.advance(5)
    assert host.states() == ["STARTING", "RUNNING", "EXITED"]
    return host


@scenario
def a_failed_signal_leaves_it_unknown(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0)
    process.spawn()
    host.advance(0.01)
    host.signal_error = PermissionError(1, "Operation not permitted")
    assert process.signal(signal.SIGHUP) is not None
    assert process.state == S.UNKNOWN
    assert host.lines[-1].startswith("CRIT unknown problem sending sig p (100):")
    host.exit(process, 0)  # it ends some day: recorded, not asserted away
    assert host.states() == ["STARTING", "RUNNING", "UNKNOWN", "EXITED"]
    return host


@scenario
def a_failed_kill_while_stopping(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=0)
    process.spawn()
    host.advance(0.01)
    process.stop()
    host.signal_error = PermissionError(1, "Operation not permitted")
    process.signal(signal.SIGUSR1)  # the stop goes on, the signal fails: UNKNOWN
    host.exit(process, signum=signal.SIGTERM)
    assert host.states() == ["STARTING", "RUNNING", "STOPPING", "UNKNOWN", "STOPPED"]
    return host


@scenario
def a_failed_stop_signal(tmp_path: Path) -> FakeHost:
    process, host = make(tmp_path, startsecs=5)
    process.spawn()
    host.signal_error = PermissionError(1, "Operation not permitted")
    assert process.stop() is not None
    assert host.states() == ["STARTING", "STOPPING", "UNKNOWN"]
    host.signal_error = None
    second, other = make(tmp_path, startsecs=5)
    second.spawn()
    other.signal_error = PermissionError(1, "Operation not permitted")
    second.signal(signal.SIGHUP)
    assert other.states() == ["STARTING", "UNKNOWN"]
    host.changes += other.changes
    return host


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str, tmp_path: Path) -> None:
    SCENARIOS[name](tmp_path)


def test_every_allowed_transition_is_exercised(tmp_path: Path) -> None:
    seen = set()
    for index, run in enumerate(SCENARIOS.values()):
        here = tmp_path / str(index)
        here.mkdir()
        seen |= {(old, new) for old, new, _ in run(here).changes}
    allowed = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    assert seen == allowed, (allowed - seen, seen - allowed)


def test_a_change_outside_the_table_is_refused(tmp_path: Path) -> None:
    process, host = make(tmp_path)
    with pytest.raises(InvalidTransition, match="p:p: STOPPED -> RUNNING"):
        process._change_state(S.RUNNING)
    assert process.state == S.STOPPED and host.changes == []
    assert all(state in TRANSITIONS for state in S)
