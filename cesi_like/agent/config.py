"""supervisord.conf into frozen dataclasses, with supervisord 4.3's keys, defaults and checks.

Equality of these dataclasses is what `reloadConfig` uses to tell a changed group from an
unchanged one, so everything that affects a running process belongs in them.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from ..inifile import ConfigError, IniFile, Section, env_expansions, expand, read_ini
from . import datatypes as dt
from . import result_handlers
from .loglevel import LogLevel

AUTO = "AUTO"
"""Marker for `*_logfile=AUTO`: a generated file in `childlogdir`."""


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """Log settings of one output channel (stdout or stderr) of a program."""

    logfile: str | None  # a path, AUTO, or None for NONE
    maxbytes: int
    backups: int
    capture_maxbytes: int
    events_enabled: bool
    syslog: bool


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """One process: a `[program:x]` with numprocs=3 gives three of these."""

    name: str
    group: str
    command: str
    priority: int
    autostart: bool
    autorestart: dt.AutoRestart
    startsecs: int
    startretries: int
    exitcodes: tuple[int, ...]
    stopsignal: int
    stopwaitsecs: int
    stopasgroup: bool
    killasgroup: bool
    user: str | None
    uid: int | None
    gid: int | None
    directory: str | None
    umask: int | None
    environment: tuple[tuple[str, str], ...]
    redirect_stderr: bool
    stdout: ChannelConfig
    stderr: ChannelConfig
    serverurl: str | None  # None means AUTO: the daemon's own URL
    section: str


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """A process group: a `[program:x]`, a `[group:x]` or an `[eventlistener:x]` pool."""

    name: str
    priority: int
    processes: tuple[ProcessConfig, ...]
    kind: str  # "program", "group", "eventlistener" or "fcgi-program"
    events: tuple[str, ...] = ()
    buffer_size: int = 10
    result_handler: str = result_handlers.DEFAULT  # as written: what reloadConfig compares
    handler: result_handlers.ResultHandler = field(
        default=result_handlers.default_handler, compare=False)  # what it names, imported
    socket: str = ""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The `[supervisord]` section."""

    logfile: str | None
    logfile_maxbytes: int
    logfile_backups: int
    loglevel: LogLevel
    pidfile: str
    umask: int
    nodaemon: bool
    silent: bool
    minfds: int
    minprocs: int
    nocleanup: bool
    childlogdir: str
    user: str | None
    directory: str | None
    strip_ansi: bool
    environment: tuple[tuple[str, str], ...]
    identifier: str
    statefile: str  # cesi-agentd's own: the disabled programs (see disabled.py)


@dataclass(frozen=True, slots=True)
class UnixHttpConfig:
    """`[unix_http_server]`."""

    file: str
    chmod: int
    chown: tuple[int, int] | None
    username: str | None
    password: str | None


@dataclass(frozen=True, slots=True)
class InetHttpConfig:
    """`[inet_http_server]`."""

    host: str
    port: int
    username: str | None
    password: str | None


@dataclass(frozen=True, slots=True)
class CtlConfig:
    """`[supervisorctl]`."""

    serverurl: str
    username: str | None
    password: str | None
    prompt: str
    history_file: str | None


@dataclass(frozen=True, slots=True)
class Config:
    """A whole parsed config file."""

    path: str
    server: ServerConfig
    unix_http: UnixHttpConfig | None
    inet_http: InetHttpConfig | None
    ctl: CtlConfig
    groups: tuple[GroupConfig, ...]
    rpcinterfaces: tuple[str, ...]
    warnings: tuple[str, ...]
    included: tuple[str, ...]

    def group(self, name: str) -> GroupConfig | None:
        return next((g for g in self.groups if g.name == name), None)


T = TypeVar("T")

EVENT_TYPES = frozenset(
    {
        "EVENT",
        "PROCESS_STATE",
        "PROCESS_STATE_STOPPED",
        "PROCESS_STATE_STARTING",
        "PROCESS_STATE_RUNNING",
        "PROCESS_STATE_BACKOFF",
        "PROCESS_STATE_STOPPING",
        "PROCESS_STATE_EXITED",
        "PROCESS_STATE_FATAL",
        "PROCESS_STATE_UNKNOWN",
        "PROCESS_LOG",
        "PROCESS_LOG_STDOUT",
        "PROCESS_LOG_STDERR",
        "PROCESS_COMMUNICATION",
        "PROCESS_COMMUNICATION_STDOUT",
        "PROCESS_COMMUNICATION_STDERR",
        "REMOTE_COMMUNICATION",
        "SUPERVISOR_STATE_CHANGE",
        "SUPERVISOR_STATE_CHANGE_RUNNING",
        "SUPERVISOR_STATE_CHANGE_STOPPING",
        "TICK_5",
        "TICK_60",
        "TICK_3600",
        "PROCESS_GROUP",
        "PROCESS_GROUP_ADDED",
        "PROCESS_GROUP_REMOVED",
    }
)


class _Reader:
    """Typed, expanded access to one section's keys; every failure names file:line:key."""

    def __init__(self, section: Section, expansions: Mapping[str, object]) -> None:
        self.section = section
        self.expansions = expansions

    def raw(self, key: str) -> str | None:
        value = self.section.values.get(key)
        return None if value is None else value.text

    def text(self, key: str, default: str | None = None, *, expand_it: bool = True) -> str | None:
        raw = self.raw(key)
        if raw is None:
            return default
        return expand(raw, self.expansions, self.section, key) if expand_it else raw

    def required(self, key: str, reason: str) -> str:
        value = self.text(key)
        if value is None:
            raise self.section.error(key, reason)
        return value

    def typed(self, key: str, convert: Callable[[str], T], default: str) -> T:
        value = self.text(key, default)
        assert value is not None
        try:
            return convert(value)
        except ValueError as exc:
            raise self.section.error(key, str(exc)) from None


def default_childlogdir() -> str:
    """The first usable temp dir as tempfile.gettempdir() would find it, without importing
    tempfile (and random, shutil...) into a daemon that only needs the name."""
    candidates = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    candidates += ["/tmp", "/var/tmp", "/usr/tmp", os.getcwd()]
    for candidate in candidates:
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return os.path.abspath(candidate)
    return os.getcwd()


def load(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Parse the config at `path`. Raises ConfigError naming the file, line, section and key."""
    env = dict(os.environ if environ is None else environ)
    ini = read_ini(path, env)
    supervisord = ini.get("supervisord")
    if supervisord is None:
        raise ConfigError(".ini file does not include supervisord section", path=ini.path)
    base_expansions: dict[str, object] = {
        "here": supervisord.here,
        "host_node_name": platform.node(),
        **env_expansions(env),
    }
    server = _server(_Reader(supervisord, base_expansions))
    base_expansions.update(env_expansions(dict(server.environment)))
    groups = _groups(ini, base_expansions, dict(server.environment))
    return Config(
        path=ini.path,
        server=server,
        unix_http=_unix_http(ini, base_expansions),
        inet_http=_inet_http(ini, base_expansions),
        ctl=_ctl(ini, base_expansions),
        groups=tuple(groups),
        rpcinterfaces=tuple(name.split(":", 1)[1] for name in ini.names("rpcinterface:")),
        warnings=tuple(ini.warnings) + tuple(_warnings(groups)) + tuple(
            f"[{name}] is not supported by cesi-agentd yet: the section is ignored"
            for name in ini.names("fcgi-program:")
        ) + tuple(_plugin_warnings(ini)),
        included=tuple(ini.included),
    )


def _server(r: _Reader) -> ServerConfig:
    directory = r.text("directory")
    if directory is not None:
        directory = r.typed("directory", dt.existing_directory, directory)
    logfile = r.text("logfile", "supervisord.log")
    assert logfile is not None
    pidfile = r.typed("pidfile", dt.path_in_existing_directory, "supervisord.pid")
    return ServerConfig(
        logfile=None
        if logfile.lower() in ("none", "off")
        else r.typed("logfile", dt.path_in_existing_directory, logfile),
        logfile_maxbytes=r.typed("logfile_maxbytes", dt.byte_size, "50MB"),
        logfile_backups=r.typed("logfile_backups", dt.integer, "10"),
        loglevel=r.typed("loglevel", dt.log_level, "info"),
        pidfile=pidfile,
        umask=r.typed("umask", dt.octal, "022"),
        nodaemon=r.typed("nodaemon", dt.boolean, "false"),
        silent=r.typed("silent", dt.boolean, "false"),
        minfds=r.typed("minfds", dt.integer, "1024"),
        minprocs=r.typed("minprocs", dt.integer, "200"),
        nocleanup=r.typed("nocleanup", dt.boolean, "false"),
        childlogdir=r.typed("childlogdir", dt.existing_directory, default_childlogdir()),
        user=r.text("user"),
        directory=directory,
        strip_ansi=r.typed("strip_ansi", dt.boolean, "false"),
        environment=tuple(r.typed("environment", dt.key_value_pairs, "").items()),
        identifier=r.text("identifier", "supervisor") or "supervisor",
        statefile=r.typed("cesi_statefile", dt.path_in_existing_directory,
                          os.path.splitext(pidfile)[0] + ".state"),
    )


def _unix_http(ini: IniFile, expansions: Mapping[str, object]) -> UnixHttpConfig | None:
    section = ini.get("unix_http_server")
    if section is None:
        return None
    r = _Reader(section, {**expansions, "here": section.here})
    path = r.required("file", "section [unix_http_server] has no file value")
    path = r.typed("file", dt.path_in_existing_directory, path)
    chown_text = r.text("chown")
    chown = None
    if chown_text:
        user, _, group = chown_text.partition(":")
        chown = r.typed("chown", dt.user_to_uid, user)
        if group:
            chown = (chown[0], r.typed("chown", _group_to_gid, group))
    username, password = r.text("username"), r.text("password")
    return UnixHttpConfig(
        file=os.path.abspath(path),
        chmod=r.typed("chmod", dt.octal, "0700"),
        chown=chown,
        username=username,
        password=password,
    )


def _group_to_gid(name: str) -> int:
    import grp

    try:
        return int(name) if name.isdigit() else grp.getgrnam(name).gr_gid
    except KeyError:
        raise ValueError(f"Invalid group name {name}") from None


def _inet_http(ini: IniFile, expansions: Mapping[str, object]) -> InetHttpConfig | None:
    section = ini.get("inet_http_server")
    if section is None:
        return None
    r = _Reader(section, {**expansions, "here": section.here})
    port_text = r.required("port", "section [inet_http_server] has no port value")
    host, port = r.typed("port", dt.inet_address, port_text)
    return InetHttpConfig(host, port, r.text("username"), r.text("password"))


def _ctl(ini: IniFile, expansions: Mapping[str, object]) -> CtlConfig:
    section = ini.get("supervisorctl")
    if section is None:
        return CtlConfig("http://localhost:9001", None, None, "supervisor", None)
    r = _Reader(section, {**expansions, "here": section.here})
    return CtlConfig(
        serverurl=r.text("serverurl", "http://localhost:9001") or "http://localhost:9001",
        username=r.text("username"),
        password=r.text("password"),
        prompt=r.text("prompt", "supervisor") or "supervisor",
        history_file=r.text("history_file"),
    )


def _groups(
    ini: IniFile, expansions: dict[str, object], server_env: dict[str, str]
) -> list[GroupConfig]:
    groups: list[GroupConfig] = []
    in_hetero_group: set[str] = set()
    for name in ini.names("group:"):
        section = ini.sections[name]
        r = _Reader(section, {**expansions, "here": section.here})
        group_name = _section_name(section)
        programs = dt.list_of_strings(r.required("programs", f"[{name}] requires a programs line"))
        processes: list[ProcessConfig] = []
        for program in programs:
            program_section = ini.get(f"program:{program}")
            if program_section is None:
                raise section.error("programs", f"names unknown program {program}")
            in_hetero_group.add(program_section.name)
            processes.extend(_processes(program_section, group_name, expansions, server_env))
        groups.append(
            GroupConfig(
                name=group_name,
                priority=r.typed("priority", dt.integer, "999"),
                processes=tuple(sorted(processes, key=lambda p: p.priority)),
                kind="group",
            )
        )
    for name in ini.names("program:"):
        if name in in_hetero_group:
            continue
        section = ini.sections[name]
        group_name = _section_name(section)
        r = _Reader(section, {**expansions, "here": section.here})
        processes = _processes(section, group_name, expansions, server_env)
        groups.append(
            GroupConfig(
                name=group_name,
                priority=r.typed("priority", dt.integer, "999"),
                processes=tuple(processes),
                kind="program",
            )
        )
    for name in ini.names("eventlistener:"):
        groups.append(_listener_pool(ini.sections[name], expansions, server_env))
    names = [g.name for g in groups]
    for group in groups:
        if names.count(group.name) > 1:
            raise ConfigError(f"duplicate process group name {group.name!r}", path=ini.path)
    return groups


def _section_name(section: Section) -> str:
    try:
        return dt.process_or_group_name(section.name.split(":", 1)[1])
    except ValueError as exc:
        raise ConfigError(str(exc), path=section.path, line=section.line) from None


def _listener_pool(
    section: Section, expansions: dict[str, object], server_env: dict[str, str]
) -> GroupConfig:
    pool_name = _section_name(section)
    r = _Reader(section, {**expansions, "here": section.here, "program_name": pool_name})
    buffer_size = r.typed("buffer_size", dt.integer, "10")
    if buffer_size < 1:
        raise section.error(
            "buffer_size", f"[{section.name}] section sets invalid buffer_size ({buffer_size})"
        )
    events = tuple(e.upper() for e in dt.list_of_strings(r.text("events", "") or ""))
    if not events:
        raise section.error("events", f'[{section.name}] section requires an "events" line')
    for event in events:
        if event not in EVENT_TYPES:
            raise section.error("events", f"Unknown event type {event} in [{section.name}] events")
    if r.typed("redirect_stderr", dt.boolean, "false"):
        raise section.error(
            "redirect_stderr",
            f"[{section.name}] section sets redirect_stderr=true but this is not allowed "
            "because it will interfere with the eventlistener protocol",
        )
    spec = r.text("result_handler", result_handlers.DEFAULT) or result_handlers.DEFAULT
    try:
        handler = result_handlers.load(spec)
    except Exception as exc:  # importing a plugin runs its code: anything can go wrong
        raise section.error("result_handler", f"{spec} cannot be resolved within "
                            f"[{section.name}]: {type(exc).__name__}: {exc}") from None
    return GroupConfig(
        name=pool_name,
        priority=r.typed("priority", dt.integer, "-1"),
        processes=tuple(_processes(section, pool_name, expansions, server_env)),
        kind="eventlistener",
        events=tuple(sorted(set(events))),
        buffer_size=buffer_size,
        result_handler=spec,
        handler=handler,
    )


def _channel(r: _Reader, channel: str) -> ChannelConfig:
    key = f"{channel}_logfile"
    raw = r.text(key, AUTO)
    assert raw is not None
    lowered = raw.lower()
    logfile: str | None
    if lowered in ("none", "off"):
        logfile = None
    elif lowered == "auto":
        logfile = AUTO
    elif lowered == "syslog":
        logfile = None
    else:
        logfile = r.typed(key, dt.path_in_existing_directory, raw)
    return ChannelConfig(
        logfile=logfile,
        maxbytes=r.typed(f"{channel}_logfile_maxbytes", dt.byte_size, "50MB"),
        backups=r.typed(f"{channel}_logfile_backups", dt.integer, "10"),
        capture_maxbytes=r.typed(f"{channel}_capture_maxbytes", dt.byte_size, "0"),
        events_enabled=r.typed(f"{channel}_events_enabled", dt.boolean, "false"),
        syslog=lowered == "syslog" or r.typed(f"{channel}_syslog", dt.boolean, "false"),
    )


def _processes(
    section: Section, group_name: str, expansions: dict[str, object], server_env: dict[str, str]
) -> list[ProcessConfig]:
    program_name = _section_name(section)
    common = {**expansions, "here": section.here, "program_name": program_name}
    common["group_name"] = group_name
    r = _Reader(section, common)
    numprocs = r.typed("numprocs", dt.integer, "1")
    numprocs_start = r.typed("numprocs_start", dt.integer, "0")
    if numprocs < 1:
        raise section.error("numprocs", "numprocs must be at least 1")
    process_name_raw = r.text("process_name", "%(program_name)s", expand_it=False)
    assert process_name_raw is not None
    if numprocs > 1 and "%(process_num)" not in process_name_raw:
        raise section.error(
            "process_name",
            "%(process_num) must be present within process_name when numprocs > 1",
        )
    stopasgroup = r.typed("stopasgroup", dt.boolean, "false")
    killasgroup = r.typed("killasgroup", dt.boolean, str(stopasgroup))
    if stopasgroup and not killasgroup:
        raise section.error("killasgroup", "Cannot set stopasgroup=true and killasgroup=false")
    user = r.text("user")
    uid_gid = r.typed("user", dt.user_to_uid, user) if user is not None else None
    umask_text = r.text("umask")
    serverurl = r.text("serverurl")
    if serverurl is not None and serverurl.strip().upper() == "AUTO":
        serverurl = None
    processes = []
    for process_num in range(numprocs_start, numprocs_start + numprocs):
        per_process = _Reader(section, {**common, "process_num": process_num, "numprocs": numprocs})
        environment = per_process.typed("environment", dt.key_value_pairs, "")
        per_process.expansions = {**per_process.expansions, **env_expansions(environment)}
        try:
            name = dt.process_or_group_name(
                expand(process_name_raw, per_process.expansions, section, "process_name")
            )
        except ValueError as exc:
            raise section.error("process_name", str(exc)) from None
        command = per_process.required(
            "command", f"program section {section.name} does not specify a command"
        )
        if not command.strip():
            raise section.error("command", "command is empty")
        redirect_stderr = per_process.typed("redirect_stderr", dt.boolean, "false")
        stderr = _channel(per_process, "stderr")
        if redirect_stderr:
            stderr = ChannelConfig(None, stderr.maxbytes, stderr.backups,
                                   stderr.capture_maxbytes, stderr.events_enabled, stderr.syslog)
        directory = per_process.text("directory")
        processes.append(
            ProcessConfig(
                name=name,
                group=group_name,
                command=command,
                priority=r.typed("priority", dt.integer, "999"),
                autostart=r.typed("autostart", dt.boolean, "true"),
                autorestart=r.typed("autorestart", dt.auto_restart, "unexpected"),
                startsecs=r.typed("startsecs", dt.integer, "1"),
                startretries=r.typed("startretries", dt.integer, "3"),
                exitcodes=r.typed("exitcodes", dt.exit_codes, "0"),
                stopsignal=r.typed("stopsignal", dt.signal_number, "TERM"),
                stopwaitsecs=r.typed("stopwaitsecs", dt.integer, "10"),
                stopasgroup=stopasgroup,
                killasgroup=killasgroup,
                user=user,
                uid=uid_gid[0] if uid_gid else None,
                gid=uid_gid[1] if uid_gid else None,
                directory=directory,
                umask=None if umask_text is None else r.typed("umask", dt.octal, umask_text),
                environment=tuple({**server_env, **environment}.items()),
                redirect_stderr=redirect_stderr,
                stdout=_channel(per_process, "stdout"),
                stderr=stderr,
                serverurl=serverurl,
                section=section.name,
            )
        )
    return processes


MAIN_RPC_FACTORY = "supervisor.rpcinterface:make_main_rpcinterface"


def _plugin_warnings(ini: IniFile) -> list[str]:
    """An `[rpcinterface:x]` other than supervisord's own names a plugin of supervisord's
    Python API (supervisor_twiddler and the like), which the agent cannot host: say so once,
    at start, rather than answer UNKNOWN_METHOD to its every call without a word."""
    warnings = []
    for name in ini.names("rpcinterface:"):
        section = ini.sections[name]
        factory = section.values.get("supervisor.rpcinterface_factory")
        made_by = factory.text.strip() if factory is not None else "(no factory)"
        if (name, made_by) != ("rpcinterface:supervisor", MAIN_RPC_FACTORY):
            warnings.append(f"[{name}] ({made_by}) is an RPC interface plugin for supervisord's "
                            "Python API, which cesi-agentd cannot load: the section is ignored "
                            "and its methods are not available")
    return warnings


def _warnings(groups: list[GroupConfig]) -> list[str]:
    warnings = []
    for group in groups:
        for process in group.processes:
            for channel, conf in (("stdout", process.stdout), ("stderr", process.stderr)):
                if conf.logfile == AUTO and not conf.maxbytes:
                    warnings.append(
                        f"For [{process.section}], AUTO logging used for {channel}_logfile "
                        "without rollover, set maxbytes > 0 to avoid filling up filesystem "
                        "unintentionally"
                    )
    return warnings


def load_ctl(path: str, environ: Mapping[str, str] | None = None) -> CtlConfig:
    """Only the `[supervisorctl]` section, as supervisorctl reads it (the rest may be absent)."""
    env = dict(os.environ if environ is None else environ)
    ini = read_ini(path, env)
    config = _ctl(ini, {"here": os.path.dirname(ini.path), **env_expansions(env)})
    if config.serverurl.startswith("unix://"):
        socket_path = os.path.abspath(os.path.expanduser(config.serverurl[len("unix://"):]))
        config = CtlConfig(f"unix://{socket_path}", config.username, config.password,
                           config.prompt, config.history_file)
    return config


DEFAULT_SEARCH_NAMES = ("supervisord.conf", "cesi-agentd.conf")


def search_paths(executable: str, cwd: str) -> list[str]:
    """supervisord's default locations, then the same places for `cesi-agentd.conf`."""
    here = os.path.dirname(os.path.abspath(executable))
    paths = []
    for name in DEFAULT_SEARCH_NAMES:
        paths += [
            os.path.join(here, "..", "etc", name),
            os.path.join(here, "..", name),
            os.path.join(cwd, name),
            os.path.join(cwd, "etc", name),
            os.path.join("/etc", name),
            os.path.join("/etc", "supervisor", name),
        ]
    return paths


def find_config(executable: str, cwd: str) -> str | None:
    return next((p for p in search_paths(executable, cwd) if os.path.exists(p)), None)
