"""Event listeners (#9), compared with supervisord 4.3: the same config and listener under
both daemons receive the same events, with the same payloads, headers and serials; a FAIL
result re-delivers the event; a listener that breaks the protocol is UNKNOWN."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemons import PROGRAMS, StartDaemon, program
from tests.support.waiting import wait_for

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


def run(start: StartDaemon, kind: str, tmp_path: Path, events: str | None = None
        ) -> list[list[str]]:
    out = tmp_path / f"{kind}.events"
    daemon = start(config(out) if events is None else config(out, events=events), kind=kind)
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


def test_the_event_supertype_is_every_event(start_daemon: StartDaemon, tmp_path: Path) -> None:
    """`events=EVENT` subscribes to every type: the same events as supervisord's (TICK_*
    aside, whose count and `when` depend on the clock)."""
    seen = {kind: {(e[0], normal(e[5])) for e in run(start_daemon, kind, tmp_path, "EVENT")
                   if not e[0].startswith("TICK_")} for kind in ("supervisord", "agent")}
    assert seen["agent"] == seen["supervisord"], (sorted(seen["agent"] - seen["supervisord"]),
                                                  sorted(seen["supervisord"] - seen["agent"]))
    assert {"PROCESS_GROUP_ADDED", "PROCESS_STATE_EXITED", "REMOTE_COMMUNICATION",
            "SUPERVISOR_STATE_CHANGE_RUNNING"} <= {name for name, _ in seen["agent"]}


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


def test_output_events_capture_mode_and_debug_lines_as_supervisord(
        start_daemon: StartDaemon, tmp_path: Path) -> None:
    """PROCESS_LOG_STDOUT for output (events enabled), PROCESS_COMMUNICATION_STDOUT for what
    comes between the capture tokens (kept out of the log file), and the main log's
    `'name' stdout output:` debug lines, non-UTF-8 bytes included."""
    seen = {}
    for kind in ("supervisord", "agent"):
        out = tmp_path / f"{kind}.events"
        daemon = start_daemon(
            f"[program:talker]\ncommand={program('talker.py')}\nstartsecs=0\n"
            "stdout_events_enabled=true\nstdout_capture_maxbytes=1MB\n"
            f"[eventlistener:watch]\ncommand={program('listener.py', out)}\n"
            "events=PROCESS_LOG,PROCESS_COMMUNICATION\nbuffer_size=100\nstartsecs=0\n",
            kind=kind, loglevel="debug")
        wait_for(lambda o=out: "end" in "".join(e[5] for e in received(o)), what=kind)
        events = received(out)
        logged = "".join(e[5] for e in events if e[0] == "PROCESS_LOG_STDOUT")
        comm = [normal(e[5]) for e in events if e[0] == "PROCESS_COMMUNICATION_STDOUT"]
        stdout = Path(daemon.info("talker")["stdout_logfile"]).read_bytes()
        main = (daemon.dir / "main.log").read_text()
        seen[kind] = (logged.count("processname:talker groupname:talker"),
                      re.sub(r"pid:\d+", "pid:N", logged.replace(
                          "processname:talker groupname:talker ", "")), comm, stdout,
                      "DEBG 'talker' stdout output:\nplain line 100%" in main,
                      "DEBG 'talker' stdout output:\nUndecodable: b'bytes \\xff\\xfe in a line"
                      in main, "DEBG 'watch' stdout output:\nb'READY\\n'" in main,
                      "DEBG 'talker' stdout emitted a comm event" in main)
    assert seen["agent"][2:] == seen["supervisord"][2:]
    assert seen["agent"][2] == ["'processname:talker groupname:talker pid:N\\nthe message'"]
    assert seen["agent"][3] == (b"plain line 100%\nafter the message, a longer line\n"
                                b"bytes \xff\xfe in a line longer than the token, end\n")
    assert all(seen["agent"][4:])
    # the same bytes as events, though the daemons may read them in different chunks
    strip = lambda text: re.sub(r"'pid:N channel:stdout\\\\n", "", text)  # noqa: E731
    assert strip(seen["agent"][1]) == strip(seen["supervisord"][1])


def test_superlance_crashmail_mails_a_crash(start_daemon: StartDaemon, tmp_path: Path) -> None:
    """superlance's crashmail, unchanged, under cesi-agentd: a program that exits
    unexpectedly gets a mail (through a stand-in sendmail)."""
    crashmail = shutil.which("crashmail", path=os.path.dirname(sys.executable))
    assert crashmail is not None, "superlance is a test dependency"
    mailbox = tmp_path / "mailbox"
    sendmail = f"{sys.executable} {PROGRAMS / 'fake_sendmail.py'} {mailbox}"
    start_daemon(f"[program:fragile]\ncommand={SLOW_EXIT}\nstartsecs=0\nautorestart=false\n"
                 f"[eventlistener:crashmail]\ncommand={crashmail} -a -m ops@example.com "
                 f"-o prod -s \"{sendmail}\"\nevents=PROCESS_STATE_EXITED\n")
    mail = wait_for(lambda: mailbox.exists() and "end of message" in mailbox.read_text()
                    and mailbox.read_text(), what="crashmail's mail")
    assert "To: ops@example.com" in mail and "Subject: prod: fragile crashed at" in mail
    assert "Process fragile in group fragile exited unexpectedly (pid" in mail


def test_a_stuck_listener_does_not_hold_up_supervisorctl(start_daemon: StartDaemon,
                                                         tmp_path: Path) -> None:
    """A listener that takes an event and never answers is BUSY forever; the daemon goes on
    answering the stock supervisorctl and managing processes."""
    daemon = start_daemon("[program:p]\ncommand=sleep 1000\nstartsecs=0\n"
                          "[eventlistener:stuck]\n"
                          f"command={program('listener.py', tmp_path / 'x', 'stuck')}\n"
                          "events=PROCESS_STATE\nstartsecs=0\n", loglevel="debug")
    wait_for(lambda: "stuck: READY -> BUSY" in (daemon.dir / "main.log").read_text(),
             what="the listener to take an event")
    for _ in range(3):
        status = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "supervisorctl"), "-c",
             str(daemon.conf), "status"], capture_output=True, text=True, timeout=20)
        assert "p                                RUNNING" in status.stdout, status.stdout
        daemon.rpc().stopProcess("p")
        daemon.rpc().startProcess("p")


def handlers_on_path(monkeypatch: pytest.MonkeyPatch, directory: Path, **modules: str) -> None:
    """Write each module's source into `directory` and put it on the daemons' import path."""
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(directory), os.environ.get("PYTHONPATH")])))


def without_colours(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_supervisor_stdlog_relays_output_as_under_supervisord(
        start_daemon: StartDaemon) -> None:
    """#18.1: supervisor-stdlog (from PyPI, unchanged) answers each PROCESS_LOG event with the
    event itself, and its `result_handler` writes it to the daemon's own stdout. The agent
    judged the answers by the default rule: every event rejected and sent again, forever."""
    relayed = {}
    for kind in ("supervisord", "agent"):
        daemon = start_daemon(
            "[program:web]\ncommand=sh -c 'echo hello from web; echo second line; exec "
            "sleep 1000'\nstartsecs=0\nstdout_events_enabled=true\n"
            f"[eventlistener:stdlog]\ncommand={sys.executable} -m supervisor_stdlog\n"
            "events=PROCESS_LOG\nbuffer_size=100\nstartsecs=0\n"
            "result_handler=supervisor_stdlog:log_handler\n", kind=kind)
        stdout = daemon.dir / "stdout.txt"
        relayed[kind] = wait_for(
            lambda s=stdout: "web | second line" in without_colours(s.read_text())
            and [line for line in without_colours(s.read_text()).splitlines()
                 if line.startswith("web")], what=f"{kind}: the relayed lines")
        assert "rejected" not in (daemon.dir / "main.log").read_text()
    assert relayed["agent"] == relayed["supervisord"] == ["web | hello from web",
                                                          "web | second line"]


def test_a_result_handler_that_cannot_be_imported_starts_nothing(
        start_daemon: StartDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """supervisor-stdout's handler is Python 2 (`print '...'`): supervisord stops at the
    import; so does the agent, naming the file, line and key, before spawning anything."""
    handlers_on_path(monkeypatch, tmp_path, py2_stdout="def event_handler(event, response):\n"
                     "    print '%s' % response\n")
    marker = tmp_path / "spawned"
    programs = (f"[program:web]\ncommand=touch {marker}\nstartsecs=0\nautorestart=false\n"
                "[eventlistener:stdout]\ncommand=cat\nevents=PROCESS_LOG\n"
                "result_handler=py2_stdout:event_handler\n")
    for kind in ("supervisord", "agent"):
        daemon = start_daemon(programs, kind=kind, wait=False)
        assert daemon.proc.wait(20) != 0, kind
        output = (daemon.dir / "stdout.txt").read_text()
        assert "py2_stdout" in output, (kind, output)
    line = daemon.conf.read_text().splitlines().index("result_handler=py2_stdout:event_handler")
    assert f"daemon.conf:{line + 1}: [eventlistener:stdout] result_handler:" in output, output
    assert "SyntaxError" in output and "py2_stdout.py, line 2" in output
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["supervisord", "agent"])
def test_a_result_handler_that_fails_makes_the_listener_unknown(
        start_daemon: StartDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kind: str) -> None:
    """A handler that raises anything but RejectEvent: the event caused an error and the
    listener gets no more events, under both daemons."""
    handlers_on_path(monkeypatch, tmp_path, broken="def handler(event, response):\n"
                     "    raise ValueError('cannot parse ' + response.decode())\n")
    out = tmp_path / "events"
    daemon = start_daemon(config(out, events="PROCESS_GROUP")
                          + "result_handler=broken:handler\n", kind=kind)
    log = daemon.dir / "main.log"
    wait_for(lambda: "has entered the UNKNOWN state" in log.read_text(), what="UNKNOWN")
    assert "watch: event caused an error" in log.read_text()
    assert len(received(out)) == 1


def test_a_listener_that_rejects_everything_does_not_spin_the_agent(
        start_daemon: StartDaemon, tmp_path: Path) -> None:
    """A rejected event comes again after a pause that doubles with each rejection (to 10 s),
    not at once: 2 s of rejections are a handful of log lines and almost no CPU (supervisord
    re-sends at once, forever: 41,000 warnings in 6 s). Once the listener accepts, the event
    is delivered and the pause is over."""
    out = tmp_path / "events"
    daemon = start_daemon(config(out, "fail-until", "PROCESS_GROUP"))
    log = daemon.dir / "main.log"
    wait_for(lambda: log.read_text().count("watch: event was rejected") >= 4,
             what="a few rejections")
    with open(f"/proc/{daemon.proc.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu_seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rejections = log.read_text().count("watch: event was rejected")
    assert rejections < 12, rejections  # 0.1 + 0.2 + 0.4 + 0.8 s... so far
    assert cpu_seconds < 2, cpu_seconds
    first = received(out)[0]
    assert {e[1] for e in received(out)} == {first[1]}  # the same event each time
    Path(f"{out}.ok").touch()
    wait_for(lambda: len({e[1] for e in received(out)}) == 3, 30, what="the events after it")
    serials = [e[1] for e in received(out)]
    assert serials[-3:] == sorted(set(serials[-3:])) and first[1] in serials
