"""The plumbing every cesi-agentctl command shares: the connection, output, exit statuses,
fault handling, and the words supervisorctl uses for each fault."""

from __future__ import annotations

import cmd
import errno
import getpass
import xmlrpc.client
from collections.abc import Callable
from typing import Any, TextIO

from ...supervisor_rpc.states import Fault
from ...supervisor_rpc.xmlrpc_client import server_proxy
from ..config import CtlConfig

# supervisorctl's exit statuses (LSB init-script conventions)
SUCCESS, GENERIC, INVALID_ARGS, UNIMPLEMENTED, NO_PRIVILEGE, NOT_INSTALLED, NOT_RUNNING = (
    0, 1, 2, 3, 4, 5, 7)
STATUS_NOT_RUNNING, STATUS_UNKNOWN = 3, 4
DEAD_PROGRAM_FAULTS = (Fault.SPAWN_ERROR, Fault.ABNORMAL_TERMINATION, Fault.NOT_RUNNING)


def make_namespec(group: str, name: str) -> str:
    return name if group == name else f"{group}:{name}"


def split_namespec(namespec: str) -> tuple[str, str | None]:
    group, colon, name = namespec.partition(":")
    if not colon:
        return namespec, namespec
    return group, (None if name in ("", "*") else name)


def result_line(result: dict[str, Any], success: str, errors: dict[int, str]) -> str:
    """One line for one entry of a group/all result (or of a single call's fault)."""
    name = make_namespec(result["group"], result["name"])
    code = result["status"]
    if code == Fault.SUCCESS:
        return f"{name}: {success}"
    if code == Fault.SPAWN_ERROR and str(result["description"]).endswith(" is disabled"):
        return f"{name}: ERROR (disabled)"  # supervisorctl says `spawn error`: it cannot know
    if code in errors:
        return f"{name}: ERROR ({errors[code]})"
    if code == Fault.FAILED and success != "started":
        return str(result["description"])
    raise ValueError(f"Unknown result code {code} for {name}")


START_ERRORS: dict[int, str] = {Fault.BAD_NAME: "no such process", Fault.NO_FILE: "no such file",
                Fault.NOT_EXECUTABLE: "file is not executable",
                Fault.ALREADY_STARTED: "already started", Fault.SPAWN_ERROR: "spawn error",
                Fault.ABNORMAL_TERMINATION: "abnormal termination"}
SIGNAL_ERRORS: dict[int, str] = {
    Fault.BAD_NAME: "no such process", Fault.BAD_SIGNAL: "bad signal name",
    Fault.NOT_RUNNING: "not running"}
CLEAR_ERRORS: dict[int, str] = {Fault.BAD_NAME: "no such process", Fault.FAILED: "failed"}

HELP = {
    "add": "add <name> [...]\tActivate groups that reread found in the config",
    "avail": "avail\t\t\tList every configured process and whether it is in use",
    "clear": "clear <name> [...]\tClear the log files of processes (or 'all')",
    "disable": "disable <name> [...]\tStop processes or groups (grp:*) and keep them from\n"
               "\t\t\tstarting (autostart, start all, reloads) until enabled",
    "enable": "enable <name> [...]\tAllow disabled processes or groups (grp:*) to start\n"
              "\t\t\tagain (starts nothing)",
    "exit": "exit\tLeave the shell",
    "fg": "fg <process>\tAttach to a running process: see its output, type its input\n"
          "\t\tCtrl-C to detach",
    "maintail": "maintail [-f|-NUM]\tThe daemon's main log: follow it, or its last bytes",
    "open": "open <url>\tTalk to another server (http://host:port or unix:///path)",
    "pid": "pid [name|all]\t\tThe daemon's pid, a process's pid, or every process's pid",
    "quit": "quit\tLeave the shell",
    "reload": "reload \t\tRestart the daemon (stops and restarts every program)",
    "remove": "remove <name> [...]\tForget stopped groups",
    "reread": "reread \t\t\tReread the config and list what changed (applies nothing)",
    "restart": "restart <name> [...]\tStop then start processes, groups (grp:*) or 'all'",
    "shutdown": "shutdown \tStop every program and the daemon",
    "signal": "signal <sig> <name> [...]\tSend a signal (HUP, 15, ...) to processes or 'all'",
    "start": "start <name> [...]\tStart processes, groups (grp:*) or 'all'",
    "status": "status [name ...]\tShow processes (all, named ones, or grp:*)",
    "stop": "stop <name> [...]\tStop processes, groups (grp:*) or 'all'",
    "tail": "tail [-f|-NUM] <name> [stdout|stderr]\tA process's log: follow it, or its last "
            "bytes (default 1600)",
    "update": "update [all|group ...]\tReread the config, then add, remove and restart "
              "changed groups",
    "version": "version\t\t\tThe version of the server's supervisor interface",
    "help": "help [command]\tList the commands, or explain one",
}


class CommandBase(cmd.Cmd):
    """State and helpers of the interpreter; the commands live in mixins (`processes`,
    `logs`, `groups`)."""

    def __init__(self, options: CtlConfig, interactive: bool, stdout: TextIO | None = None):
        super().__init__(stdout=stdout)
        self.options = options
        self.interactive = interactive
        self.prompt = f"{options.prompt}> "
        self.exitstatus = SUCCESS
        self._proxy: Any = None

    # -- plumbing --------------------------------------------------------------------------

    @property
    def out(self) -> TextIO:
        return self.stdout  # type: ignore[return-value]

    def output(self, message: str) -> None:
        self.stdout.write(message + "\n")
        self.stdout.flush()

    @property
    def supervisor(self) -> Any:
        return self._server.supervisor

    @property
    def cesi(self) -> Any:
        """cesi-agentd's own namespace (supervisord answers UNKNOWN_METHOD)."""
        return self._server.cesi

    @property
    def _server(self) -> Any:
        if self._proxy is None:
            self._proxy = server_proxy(self.options.serverurl, self.options.username,
                                       self.options.password)
        return self._proxy

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> None:
        self.output(f"*** Unknown syntax: {line}")
        self.exitstatus = GENERIC

    def onecmd(self, line: str) -> bool:
        command, arg, line = self.parseline(line)
        if not line:
            return self.emptyline()
        if not command or not hasattr(self, f"do_{command}"):
            self.default(line)
            return False
        self.lastcmd = line
        handler: Callable[[str], bool | None] = getattr(self, f"do_{command}")
        try:
            return bool(handler(arg or ""))
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode != 401:
                self.exitstatus = GENERIC
                self.output(f"error: HTTP {exc.errcode} {exc.errmsg}")
                return False
            if not self.interactive:
                self.output("Server requires authentication")
                self.exitstatus = GENERIC
                return False
            self.output("Server requires authentication")
            username = input("Username:")
            password = getpass.getpass(prompt="Password:")
            self.output("")
            self.options = _with_credentials(self.options, username, password)
            self._proxy = None
            return self.onecmd(line)
        except (xmlrpc.client.Error, OSError, ValueError) as exc:
            self.output(f"error: {type(exc)}, {exc}")
            self.exitstatus = GENERIC
            return False

    def fault_status(self, code: int, ignored: int | None = None) -> None:
        if code in (ignored, Fault.SUCCESS):
            return
        self.exitstatus = NOT_RUNNING if code in DEAD_PROGRAM_FAULTS else GENERIC

    def upcheck(self) -> bool:
        """Is there a compatible server at serverurl? Says why not and sets the exit status."""
        try:
            api = self.supervisor.getVersion()
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Fault.UNKNOWN_METHOD:
                self.output("Sorry, the server responded but does not know the supervisor "
                            "namespace; is [rpcinterface:supervisor] in its config?")
                self.exitstatus = UNIMPLEMENTED
                return False
            self.exitstatus = GENERIC
            raise
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:
                self.output(f"{self.options.serverurl} refused connection")
                self.exitstatus = NO_PRIVILEGE
                return False
            if exc.errno == errno.ENOENT:
                self.output(f"{self.options.serverurl} no such file")
                self.exitstatus = NOT_RUNNING
                return False
            self.exitstatus = GENERIC
            raise
        if api != "3.0":
            self.output("Sorry, this version of cesi-agentctl expects to talk to a server with "
                        f"API version 3.0, but the remote version is {api}.")
            self.exitstatus = NOT_INSTALLED
            return False
        return True

    def usage_error(self, message: str, command: str, status: int = GENERIC) -> None:
        self.output(message)
        self.exitstatus = status
        self.output(HELP[command])

    # -- help and shell --------------------------------------------------------------------

    def do_help(self, arg: str) -> None:
        if arg:
            self.output(HELP.get(arg.strip(), f"*** No help on {arg.strip()}"))
            return
        self.output("")
        self.print_topics("default commands (type help <topic>):", sorted(HELP), 15, 80)

    def do_quit(self, arg: str) -> bool:
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:
        self.output("")
        return True







def _with_credentials(options: CtlConfig, username: str, password: str) -> CtlConfig:
    import dataclasses

    return dataclasses.replace(options, username=username, password=password)


def _with_url(options: CtlConfig, url: str) -> CtlConfig:
    import dataclasses

    return dataclasses.replace(options, serverurl=url)

