"""Event listeners (#9), compared with supervisord 4.3: the same config and listener under
both daemons receive the same events, with the same payloads, headers and serials; a FAIL
result re-delivers the event; a listener that breaks the protocol is UNKNOWN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import StartDaemon, program, wait_for

SLOW_EXIT = "sh -c 'sleep 0.3; exit 3'"


def config(out: Path, mode: str = "", events: str = "PROCESS_STATE,PROCESS_GROUP,"
           "SUPERVISOR_STATE_CHANGE,REMOTE_COMMUNICATION") -> str:
    return (f"[program:quick]\ncommand={SLOW_EXIT}\nstartsecs=0\nautorestart=false\n"
            "[program:sleeper]\ncommand=sleep 1000\nstartsecs=0\n"
            f"[eventlistener:watch]\ncommand={program('listener.py', out, mode)}\n"
            f"events={events}\nbuffer_size=100\nstartsecs=0\n")


def received(out: Path) -> list[list[str]]:
    if not out.exists():
        return []
    return [line.split("|", 5) for line in out.read_text().splitlines()]


def normal(payload: str) -> str:
    return re.sub(r"pid:\d+", "pid:N", payload)


def run(start: StartDaemon, kind: str, tmp_path: Path) -> list[list[str]]:
    out = tmp_path / f"{kind}.events"
    daemon = start(config(out), kind=kind)
    rpc = daemon.rpc()
    wait_for(lambda: any("EXITED" in e[0] for e in received(out)), what=f"{kind}: EXITED")
    rpc.sendRemoteCommEvent("deploy", "hello\nworld")
    wait_for(lambda: any("REMOTE" in e[0] for e in received(out)), what=f"{kind}: remote")
    rpc.stopProcess("sleeper")
    wait_for(lambda: any("STOPPED" in e[0] for e in received(out)), what=f"{kind}: STOPPED")
    return received(out)


def test_the_same_events_as_supervisord(start_daemon: StartDaemon, tmp_path: Path) -> None:
    seen = {kind: run(start_daemon, kind, tmp_path) for kind in ("supervisord", "agent")}
    for kind, events in seen.items():
        # serials count every event delivered, in order; so do pool serials
        assert [int(e[1]) for e in events] == list(range(len(events))), (kind, events)
        assert [int(e[3]) for e in events] == list(range(len(events))), (kind, events)
        assert {e[2] for e in events} == {"watch"} and {e[4] for e in events} == {"3.0"}
    ours = {(e[0], normal(e[5])) for e in seen["agent"]}
    theirs = {(e[0], normal(e[5])) for e in seen["supervisord"]}
    assert ours == theirs, (sorted(ours - theirs), sorted(theirs - ours))
    for events in seen.values():  # what follows start-up comes in the order it happened
        tail = [e[0] for e in events if e[0] in ("REMOTE_COMMUNICATION",
                                                 "PROCESS_STATE_STOPPING",
                                                 "PROCESS_STATE_STOPPED")]
        assert tail == ["REMOTE_COMMUNICATION", "PROCESS_STATE_STOPPING",
                        "PROCESS_STATE_STOPPED"]


@pytest.mark.parametrize("kind", ["supervisord", "agent"])
def test_a_failed_event_comes_again(start_daemon: StartDaemon, tmp_path: Path,
                                    kind: str) -> None:
    out = tmp_path / "events"
    start_daemon(config(out, "fail-first", "PROCESS_GROUP"), kind=kind)
    events = wait_for(lambda: len(received(out)) >= 4 and received(out),
                      what="the rejected event again")
    # four groups added; the first one twice: rejected, then taken
    assert [e[5] for e in events[:2]] == [events[0][5]] * 2
    assert events[0][1] == events[1][1]  # the same event (serial), not a new one
    assert sorted(e[5] for e in events[1:]) == sorted(
        repr(f"groupname:{g}\n") for g in ("quick", "sleeper", "watch"))


@pytest.mark.parametrize("kind", ["supervisord", "agent"])
def test_a_protocol_violation_makes_the_listener_unknown(
        start_daemon: StartDaemon, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "events"
    daemon = start_daemon(config(out, "garbage", "PROCESS_GROUP"), kind=kind,
                          loglevel="debug")
    log = daemon.dir / "main.log"
    wait_for(lambda: "has entered the UNKNOWN state" in log.read_text(), what="UNKNOWN")
    text = log.read_text()
    assert "watch: bad result line: 'what protocol?'" in text
    assert "watch: BUSY -> UNKNOWN" in text
    assert len(received(out)) == 1  # nothing more for it


@pytest.mark.parametrize("kind", ["supervisord", "agent"])
def test_a_full_buffer_drops_the_oldest_event_and_says_so(
        start_daemon: StartDaemon, kind: str) -> None:
    """A listener that never becomes READY: its pool keeps buffer_size events, logs each
    one it drops, and nothing else (process management, the RPC) waits for it."""
    programs = "".join(f"[program:p{i}]\ncommand=sleep 1000\nstartsecs=0\n" for i in range(4))
    daemon = start_daemon(programs + "[eventlistener:deaf]\ncommand=sleep 1000\n"
                          "events=PROCESS_STATE\nbuffer_size=2\nstartsecs=0\n", kind=kind)
    log = daemon.dir / "main.log"
    wait_for(lambda: "pool deaf event buffer overflowed, discarding event" in log.read_text(),
             what="an overflow")
    rpc = daemon.rpc()
    assert rpc.stopProcess("p0") is True and rpc.startProcess("p0") is True
    dropped = re.findall(r"pool deaf event buffer overflowed, discarding event (\d+)",
                         log.read_text())
    assert [int(n) for n in dropped] == sorted(int(n) for n in dropped)  # oldest first
