"""Child log capture and rotation (byte-exact), AUTO/NONE files, strip_ansi, SIGUSR2, main log."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from cesi_like.agent.logs import RotatingFile, read_range, tail
from tests.support.daemons import StartDaemon, program
from tests.support.waiting import wait_for


def rotated_files(path: Path, backups: int) -> list[Path]:
    """Oldest first: path.N ... path.1, path."""
    older = [Path(f"{path}.{i}") for i in range(backups, 0, -1)]
    return [p for p in older if p.exists()] + [path]


def expected_lines(total: int, size: int) -> list[str]:
    lines, written, number = [], 0, 0
    while written < total:
        head = f"{number:010d} "
        line = (head + "x" * max(0, size - len(head) - 1))[: size - 1] + "\n"
        lines.append(line)
        written += len(line)
        number += 1
    return lines


# -- RotatingFile unit behaviour -------------------------------------------------------------


def test_rotation_keeps_lines_whole_and_files_within_maxbytes(tmp_path: Path) -> None:
    log = RotatingFile(str(tmp_path / "out.log"), maxbytes=100, backups=3)
    log.write(b"a" * 30 + b"\n" + b"b" * 30 + b"\n" + b"c" * 50 + b"\n")  # 113 bytes
    log.close()
    assert (tmp_path / "out.log.1").read_bytes() == b"a" * 30 + b"\n" + b"b" * 30 + b"\n"
    assert (tmp_path / "out.log").read_bytes() == b"c" * 50 + b"\n"


def test_a_line_longer_than_a_file_is_split_hard(tmp_path: Path) -> None:
    log = RotatingFile(str(tmp_path / "out.log"), maxbytes=10, backups=5)
    log.write(b"0123456789abcdefghij!")
    log.close()
    parts = [p.read_bytes() for p in rotated_files(tmp_path / "out.log", 5)]
    assert parts == [b"0123456789", b"abcdefghij", b"!"]


def test_no_backups_truncates(tmp_path: Path) -> None:
    log = RotatingFile(str(tmp_path / "out.log"), maxbytes=10, backups=0)
    log.write(b"12345\n67890\nabc\n")
    log.close()
    assert (tmp_path / "out.log").read_bytes() == b"67890\nabc\n"
    assert not (tmp_path / "out.log.1").exists()


def test_backups_beyond_the_count_are_dropped(tmp_path: Path) -> None:
    log = RotatingFile(str(tmp_path / "out.log"), maxbytes=4, backups=2)
    for chunk in (b"one\n", b"two\n", b"three\n"[:4], b"four"):
        log.write(chunk)
    log.close()
    assert [p.name for p in rotated_files(tmp_path / "out.log", 5)] == [
        "out.log.2", "out.log.1", "out.log"]


def test_every_position_is_located_across_rotations(tmp_path: Path) -> None:
    """What a slow `tail -f` reads from: each byte written has a position that names the file
    still holding it; rotation past the backups, a clear and an outside move (logrotate, then
    SIGUSR2) each say where what is left begins."""
    path = tmp_path / "p.log"
    log = RotatingFile(str(path), maxbytes=10, backups=2)
    for letter in b"abcdefg":  # files of two lines: ab cd ef g
        log.write(bytes([letter]) * 4 + b"\n")
    assert log.end == 35
    assert log.locate(3) == 10  # "ab" is gone: p.log.2 holds from position 10
    assert log.locate(12) == (f"{path}.2", 2, 8)
    assert log.locate(21) == (f"{path}.1", 1, 9)
    assert log.locate(32) == (str(path), 2, 3)
    assert (tmp_path / "p.log.2").read_bytes()[2:] == b"cc\ndddd\n"
    log.clear()
    assert log.locate(12) == 35 and log.end == 35
    log.write(b"hhhh\n")
    os.replace(path, tmp_path / "moved")  # logrotate
    log.open()
    log.write(b"ii\n")
    assert log.locate(36) == 40 and log.locate(41) == (str(path), 1, 2)


def test_read_range_and_tail_match_supervisord(tmp_path: Path) -> None:
    from supervisor.options import readFile, tailFile

    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    for offset, length in [(2, 3), (-4, 0), (5, 0), (0, 0), (12, 3), (-20, 0)]:
        assert read_range(str(path), offset, length) == readFile(str(path), offset, length)
    for offset, length in [(0, 4), (8, 4), (10, 4), (3, 100), (0, 10), (11, 2), (9, 1)]:
        data, new_offset, overflow = tail(str(path), offset, length)
        assert [data.decode(), new_offset, overflow] == tailFile(str(path), offset, length)
    assert tail(str(tmp_path / "missing"), 3, 4) == (b"", 3, False)


# -- capture through a real daemon ----------------------------------------------------------


@pytest.mark.parametrize(("total", "line"), [(3_000_000, 100), (2_000_000, 65536)])
def test_capture_rotation_loses_and_duplicates_nothing(
    start_daemon: StartDaemon, tmp_path: Path, total: int, line: int
) -> None:
    out = tmp_path / "noisy.log"
    start_daemon(f"""
[program:noisy]
command={program("noisy.py", total, line)}
stdout_logfile={out}
stdout_logfile_maxbytes=256KB
stdout_logfile_backups=100
startsecs=0
""")
    def finished() -> list[Path] | None:
        files = rotated_files(out, 100)
        try:
            return files if files[-1].read_bytes().endswith(b"DONE\n") else None
        except FileNotFoundError:  # not spawned yet, or between rename and reopen
            return None

    files = wait_for(finished, 60, "all output captured")
    data = b"".join(f.read_bytes() for f in files)
    assert data == "".join(expected_lines(total, line)).encode() + b"DONE\n"
    for path in files:
        assert path.stat().st_size <= 256 * 1024
        if line < 256 * 1024:  # lines that fit a file are never split across two
            assert path.read_bytes().endswith(b"\n")


def test_redirect_stderr_goes_to_stdout_log(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:err]
command={program("noisy.py", 300, 100, "stderr")}
redirect_stderr=true
startsecs=0
""")
    wait_for(lambda: "DONE" in daemon.child_log("err"))
    assert daemon.info("err")["stderr_logfile"] == ""


def test_auto_and_none_logfiles(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("""
[program:quiet]
command=sleep 100
stdout_logfile=NONE
stderr_logfile=AUTO
startsecs=0
""")
    info = daemon.wait_state("quiet", "RUNNING")
    assert info["stdout_logfile"] == "" and info["logfile"] == ""
    assert re.fullmatch(rf"{daemon.dir}/quiet-stderr---supervisor-\w+\.log",
                        info["stderr_logfile"])


@pytest.mark.parametrize("nocleanup", [False, True])
def test_old_auto_logs_are_cleaned_unless_nocleanup(
    start_daemon: StartDaemon, tmp_path: Path, nocleanup: bool
) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    stale = directory / "old-stdout---supervisor-abc123.log"
    stale.write_text("old")
    unrelated = directory / "keep-me.log"
    unrelated.write_text("mine")
    start_daemon(f"""
[supervisord]
childlogdir={directory}
nocleanup={str(nocleanup).lower()}

[program:p]
command=sleep 100
""")  # a repeated [supervisord] section merges into the first, as in supervisord
    assert stale.exists() is nocleanup
    assert unrelated.exists()


def test_strip_ansi(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(f"""
[program:colour]
command={program("ansi.py")}
startsecs=0
""", extra_args=("-n", "-t"))
    assert wait_for(lambda: daemon.child_log("colour")) == "red plain\n"


def test_sigusr2_reopens_logs(start_daemon: StartDaemon, tmp_path: Path) -> None:
    out = tmp_path / "echo.log"
    daemon = start_daemon(f"""
[program:echo]
command={program("echo_stdin.py")}
stdout_logfile={out}
startsecs=0
""")
    daemon.wait_state("echo", "RUNNING")
    daemon.rpc().sendProcessStdin("echo", "before\n")
    wait_for(lambda: out.exists() and "before" in out.read_text())
    os.rename(out, tmp_path / "echo.log.moved")
    os.rename(daemon.dir / "main.log", daemon.dir / "main.log.moved")
    daemon.proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: (daemon.dir / "main.log").exists(), what="a new main log")
    daemon.rpc().sendProcessStdin("echo", "after\n")
    wait_for(lambda: out.exists() and out.read_text() == "got: after\n", what="a new child log")
    assert (tmp_path / "echo.log.moved").read_text() == "got: before\n"


def test_loglevel_filters_the_main_log(start_daemon: StartDaemon) -> None:
    quiet = start_daemon("[program:p]\ncommand=sleep 100\nstartsecs=0\n", loglevel="warn")
    chatty = start_daemon("[program:p]\ncommand=sleep 100\nstartsecs=0\n", loglevel="debug")
    quiet.wait_state("p", "RUNNING")
    chatty.wait_state("p", "RUNNING")
    quiet.rpc().stopProcess("p")
    chatty.rpc().stopProcess("p")
    assert " DEBG killing p " in chatty.log() and " INFO spawned: 'p'" in chatty.log()
    assert " INFO " not in quiet.log() and " DEBG " not in quiet.log()
    assert " WARN stopped: p (terminated by SIGTERM)" in quiet.log()


def test_main_log_rotates(start_daemon: StartDaemon) -> None:
    # ten programs restarting once a second each (the crash-loop limit) fill 2 KB fast
    daemon = start_daemon(f"""
[program:blink]
command={program("exit_with.py", 0)}
process_name=%(program_name)s_%(process_num)s
numprocs=10
startsecs=0
autorestart=true
""", extra_args=("-n", "-y", "2KB", "-z", "2"))
    wait_for(lambda: (daemon.dir / "main.log.2").exists(), what="two main log backups")
    daemon.rpc().stopProcessGroup("blink")
    for name in ("main.log", "main.log.1", "main.log.2"):
        assert (daemon.dir / name).stat().st_size <= 2048
    assert not (daemon.dir / "main.log.3").exists()


def test_syslog_gets_whole_lines_with_the_process_name(tmp_path: Path) -> None:
    from cesi_like.agent.capture import Channel
    from cesi_like.agent.config import ChannelConfig

    sent: list[str] = []
    conf = ChannelConfig(None, 0, 0, 0, False, True)
    channel = Channel("stdout", conf, None, strip=False, syslog=sent.append)
    channel.write(b"first line\nsecond ")
    channel.write(b"half\n\nthird")
    assert sent == ["first line", "second half"]


def test_syslog_setting_reaches_the_channel(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("[program:p]\ncommand=sleep 100\nstdout_syslog=true\nstartsecs=0\n")
    info = {i["name"]: i for i in daemon.rpc().getAllConfigInfo()}["p"]
    assert info["stdout_syslog"] is True and info["stderr_syslog"] is False


def test_a_full_disk_drops_file_output_but_keeps_capturing() -> None:
    from cesi_like.agent.capture import Channel
    from cesi_like.agent.config import ChannelConfig

    errors: list[str] = []
    followed: list[bytes] = []
    channel = Channel("stdout", ChannelConfig("/dev/full", 0, 0, 0, False, False),
                      "/dev/full", strip=False, on_error=errors.append)
    channel.listeners.append(followed.append)
    channel.write(b"one\n")
    channel.write(b"two\n")
    assert followed == [b"one\n", b"two\n"]  # followers (tail -f) still get everything
    assert len(errors) == 1 and "No space left on device" in errors[0]  # reported, not spammed
    channel.close()
