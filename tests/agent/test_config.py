"""supervisord.conf parsing: keys, defaults, expansions, includes, errors naming file:line."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cesi_like.agent import datatypes as dt
from cesi_like.agent.config import AUTO, load
from cesi_like.agent.loglevel import LogLevel
from cesi_like.inifile import ConfigError

MINIMAL = "[supervisord]\nlogfile=%(here)s/main.log\n"


def write(tmp_path: Path, text: str, name: str = "supervisord.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_match_supervisord(tmp_path: Path) -> None:
    config = load(str(write(tmp_path, MINIMAL + "[program:web]\ncommand=sleep 1\n")))
    server = config.server
    assert server.logfile == str(tmp_path / "main.log")
    assert (server.logfile_maxbytes, server.logfile_backups) == (50 * 1024 * 1024, 10)
    assert server.loglevel == LogLevel.INFO
    assert server.pidfile == "supervisord.pid"
    assert (server.umask, server.minfds, server.minprocs) == (0o22, 1024, 200)
    assert (server.nodaemon, server.silent, server.nocleanup, server.strip_ansi) == (
        False, False, False, False)
    assert server.childlogdir == tempfile.gettempdir()
    assert server.identifier == "supervisor"
    [group] = config.groups
    assert (group.name, group.priority, group.kind) == ("web", 999, "program")
    [process] = group.processes
    assert process.name == "web" and process.group == "web"
    assert process.autostart is True
    assert process.autorestart == dt.AutoRestart.UNEXPECTED
    assert (process.startsecs, process.startretries, process.exitcodes) == (1, 3, (0,))
    assert (process.stopsignal, process.stopwaitsecs) == (signal.SIGTERM, 10)
    assert (process.stopasgroup, process.killasgroup, process.redirect_stderr) == (
        False, False, False)
    assert process.stdout.logfile == AUTO and process.stderr.logfile == AUTO
    assert process.stdout.maxbytes == 50 * 1024 * 1024 and process.stdout.backups == 10
    assert process.uid is None and process.directory is None and process.umask is None
    assert process.serverurl is None
    assert config.ctl.serverurl == "http://localhost:9001"
    assert config.unix_http is None and config.inet_http is None


def test_every_program_key(tmp_path: Path) -> None:
    text = MINIMAL + """
[program:worker]
command=/bin/echo %(program_name)s-%(process_num)d of %(numprocs)d in %(group_name)s
process_name=%(program_name)s_%(process_num)02d
numprocs=2
numprocs_start=5
priority=10
autostart=false
startsecs=0
startretries=7
autorestart=true
exitcodes=0,2
stopsignal=int
stopwaitsecs=3
stopasgroup=true
directory=%(here)s
umask=027
redirect_stderr=yes
stdout_logfile=%(here)s/%(program_name)s-%(process_num)s.log
stdout_logfile_maxbytes=1KB
stdout_logfile_backups=0
stdout_capture_maxbytes=2MB
stdout_events_enabled=on
stderr_logfile=NONE
environment=A="1",B='x,y',C=plain
serverurl=AUTO
"""
    config = load(str(write(tmp_path, text)))
    group = config.groups[0]
    assert group.priority == 10
    names = [p.name for p in group.processes]
    assert names == ["worker_05", "worker_06"]
    first = group.processes[0]
    assert first.command == "/bin/echo worker-5 of 2 in worker"
    assert first.autostart is False and first.startsecs == 0 and first.startretries == 7
    assert first.autorestart == dt.AutoRestart.ALWAYS
    assert first.exitcodes == (0, 2)
    assert first.stopsignal == signal.SIGINT and first.stopwaitsecs == 3
    assert first.stopasgroup and first.killasgroup  # killasgroup follows stopasgroup
    assert first.directory == str(tmp_path) and first.umask == 0o27
    assert first.redirect_stderr and first.stderr.logfile is None
    assert first.stdout.logfile == str(tmp_path / "worker-5.log")
    assert (first.stdout.maxbytes, first.stdout.backups) == (1024, 0)
    assert first.stdout.capture_maxbytes == 2 * 1024 * 1024 and first.stdout.events_enabled
    assert dict(first.environment) == {"A": "1", "B": "x,y", "C": "plain"}


def test_expansions_env_here_and_host(tmp_path: Path) -> None:
    text = """[supervisord]
logfile=%(ENV_LOGDIR)s/main.log
environment=GLOBAL="g"

[program:p]
command=/bin/echo %(ENV_GLOBAL)s %(host_node_name)s %(here)s %%literal %(ENV_LOCAL)s
environment=LOCAL="l"
"""
    config = load(str(write(tmp_path, text)), environ={"LOGDIR": str(tmp_path)})
    assert config.server.logfile == f"{tmp_path}/main.log"
    command = config.groups[0].processes[0].command
    assert command == f"/bin/echo g {platform.node()} {tmp_path} %literal l"
    # the daemon's environment= reaches every child, under the program's own
    assert dict(config.groups[0].processes[0].environment) == {"GLOBAL": "g", "LOCAL": "l"}


def test_include_globs_relative_to_including_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d", "[program:b]\ncommand=/bin/echo %(here)s\n", "b.ini")
    write(tmp_path / "conf.d", "[program:a]\ncommand=/bin/true\n", "a.ini")
    write(tmp_path / "conf.d", "ignored", "notes.txt")
    main = write(tmp_path, MINIMAL + "[include]\nfiles = conf.d/*.ini missing/*.conf\n")
    config = load(str(main))
    assert [g.name for g in config.groups] == ["a", "b"]
    # %(here)s in an included file is that file's directory
    assert config.group("b").processes[0].command == f"/bin/echo {tmp_path / 'conf.d'}"  # type: ignore[union-attr]
    assert any("No file matches" in w for w in config.warnings)


def test_heterogeneous_group_and_listener(tmp_path: Path) -> None:
    text = MINIMAL + """
[group:web]
programs=b,a
priority=5

[program:a]
command=/bin/true
priority=2

[program:b]
command=/bin/true
priority=1

[program:alone]
command=/bin/true

[eventlistener:mon]
command=/bin/cat
events=PROCESS_STATE,TICK_60
"""
    config = load(str(write(tmp_path, text)))
    assert [(g.name, g.kind) for g in config.groups] == [
        ("web", "group"), ("alone", "program"), ("mon", "eventlistener")]
    web = config.groups[0]
    assert web.priority == 5 and [p.name for p in web.processes] == ["b", "a"]
    assert all(p.group == "web" for p in web.processes)
    listener = config.groups[2]
    assert listener.priority == -1 and listener.events == ("PROCESS_STATE", "TICK_60")
    assert listener.buffer_size == 10


def test_http_sections(tmp_path: Path) -> None:
    text = MINIMAL + """
[unix_http_server]
file=%(here)s/s.sock
chmod=0770
username=u
password={SHA}abc

[inet_http_server]
port=*:9123

[supervisorctl]
serverurl=unix://%(here)s/s.sock
prompt=mine
"""
    config = load(str(write(tmp_path, text)))
    assert config.unix_http is not None and config.unix_http.file == str(tmp_path / "s.sock")
    assert config.unix_http.chmod == 0o770 and config.unix_http.password == "{SHA}abc"
    assert config.inet_http is not None
    assert (config.inet_http.host, config.inet_http.port) == ("", 9123)
    assert config.ctl.prompt == "mine"


def test_inline_comments_need_a_space(tmp_path: Path) -> None:
    text = MINIMAL + "[program:p]\ncommand=/bin/echo a;b ; a comment\n"
    assert load(str(write(tmp_path, text))).groups[0].processes[0].command == "/bin/echo a;b"


@pytest.mark.parametrize(
    ("body", "line", "section", "key", "reason"),
    [
        ("[program:p]\ncommand=/bin/true\nautostart=maybe\n", 5, "program:p", "autostart",
         "not a valid boolean"),
        ("[program:p]\ncommand=/bin/true\nstopsignal=NOPE\n", 5, "program:p", "stopsignal",
         "not a valid signal name"),
        ("[program:p]\ncommand=/bin/true\n\nstdout_logfile_maxbytes=lots\n", 6, "program:p",
         "stdout_logfile_maxbytes", "not a valid byte size"),
        ("[program:p]\ncommand=/bin/true\nexitcodes=0,300\n", 5, "program:p", "exitcodes",
         "not a valid list of exit codes"),
        ("[program:p]\ncommand=/bin/true\nautorestart=sometimes\n", 5, "program:p",
         "autorestart", "invalid 'autorestart' value"),
        ("[program:p]\ncommand=/bin/true\numask=999\n", 5, "program:p", "umask",
         "can not be converted to an octal type"),
        ("[program:p]\nnumprocs=2\ncommand=/bin/true\n", 3, "program:p", "process_name",
         "%(process_num) must be present"),
        ("[program:p]\ncommand=/bin/true\nstopasgroup=true\nkillasgroup=false\n", 6,
         "program:p", "killasgroup", "Cannot set stopasgroup=true and killasgroup=false"),
        ("[program:p]\nautostart=true\n", 3, "program:p", "command", "does not specify a command"),
        ("[program:p]\ncommand=/bin/echo %(nope)s\n", 4, "program:p", "command",
         "cannot be expanded"),
        ("[program:p]\ncommand=/bin/true\nenvironment=A=1,B\n", 5, "program:p", "environment",
         "Unexpected end of key/value pairs"),
        ("[program:p]\ncommand=/bin/true\nuser=no-such-user-here\n", 5, "program:p", "user",
         "Invalid user name"),
        ("[program:p]\ncommand=/bin/true\nstdout_logfile=/no/such/dir/x.log\n", 5, "program:p",
         "stdout_logfile", "does not exist"),
        ("[group:g]\nprograms=ghost\n", 4, "group:g", "programs", "names unknown program ghost"),
        ("[eventlistener:e]\ncommand=/bin/cat\n", 3, "eventlistener:e", "events",
         'requires an "events" line'),
        ("[eventlistener:e]\ncommand=/bin/cat\nevents=NOT_AN_EVENT\n", 5, "eventlistener:e",
         "events", "Unknown event type"),
        ("[eventlistener:e]\ncommand=/bin/cat\nevents=TICK_5\nredirect_stderr=true\n", 6,
         "eventlistener:e", "redirect_stderr", "sets redirect_stderr=true but this is not "
         "allowed because it will interfere with the eventlistener protocol"),
        ("[inet_http_server]\nport=localhost:\n", 4, "inet_http_server", "port",
         "no port number"),
        ("[program:bad name]\ncommand=/bin/true\n", 3, "", "", "Invalid name"),
    ],
)
def test_bad_values_name_file_line_section_key(
    tmp_path: Path, body: str, line: int, section: str, key: str, reason: str
) -> None:
    path = write(tmp_path, MINIMAL + body)
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    error = caught.value
    assert (error.path, error.line) == (str(path), line), str(error)
    assert (error.section, error.key) == (section, key), str(error)
    assert reason in error.reason
    assert str(error).startswith(f"{path}:{line}: ")


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    included = write(tmp_path, "[program:x]\ncommand=/bin/true\npriority=high\n", "x.ini")
    main = write(tmp_path, MINIMAL + "[include]\nfiles=x.ini\n")
    with pytest.raises(ConfigError) as caught:
        load(str(main))
    assert str(caught.value) == (
        f"{included}:3: [program:x] priority: not an integer: 'high'"
    )


def test_syntax_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":1: file contains no section headers"):
        load(str(write(tmp_path, "command=/bin/true\n")))
    with pytest.raises(ConfigError, match=r"does not include supervisord section"):
        load(str(write(tmp_path, "[program:x]\ncommand=/bin/true\n")))
    with pytest.raises(ConfigError, match=r"could not read config file"):
        load(str(tmp_path / "missing.conf"))


def test_bad_config_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    path = write(tmp_path, MINIMAL + f"""
[unix_http_server]
file=%(here)s/s.sock

[program:first]
command=/bin/sh -c "touch {marker}; sleep 100"

[program:broken]
command=/bin/true
startsecs=soon
""")
    result = subprocess.run(
        [sys.executable, "-m", "cesi_like.agent.main", "-c", str(path), "-n"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert f"{path}:12: [program:broken] startsecs: not an integer: 'soon'" in result.stderr
    assert not marker.exists() and not (tmp_path / "s.sock").exists()
    assert not (tmp_path / "main.log").exists()


def test_sample_config_is_loadable(tmp_path: Path) -> None:
    sample = subprocess.run(
        [sys.executable, "-m", "cesi_like.agent.main", "--sample-config"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    path = write(tmp_path, sample.replace("/tmp/", f"{tmp_path}/"))
    config = load(str(path))
    assert config.unix_http is not None and config.unix_http.chmod == 0o700
    assert config.rpcinterfaces == ("supervisor",)
    # and supervisord itself accepts it unchanged
    from supervisor.options import ServerOptions

    options = ServerOptions()
    options.configfile = str(path)
    options.process_config_file = None  # type: ignore[attr-defined]
    with open(path) as handle:
        options.read_config(handle)


def test_datatype_edge_cases() -> None:
    assert dt.byte_size("1GB") == 1024**3 and dt.byte_size("10") == 10
    assert dt.signal_number("sigusr2") == signal.SIGUSR2 and dt.signal_number("9") == 9
    assert dt.inet_address("127.0.0.1:80") == ("127.0.0.1", 80)
    assert dt.inet_address("9001") == ("", 9001)
    assert dt.key_value_pairs('A="a b",B=2') == {"A": "a b", "B": "2"}
    assert dt.key_value_pairs("") == {}
    assert dt.user_to_uid(str(os.getuid()))[0] == os.getuid()
    with pytest.raises(ValueError):
        dt.inet_address("host:notaport")
