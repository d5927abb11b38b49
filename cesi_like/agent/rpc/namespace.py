"""The `supervisor.*` XML-RPC namespace, answering as supervisord 4.3 does.

Method names, arguments, struct keys, fault codes and fault strings are Supervisor's contract
(see shared/SUPERVISOR.md). Docstrings carry `@param`/`@return` tags for methodSignature.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ...inifile import ConfigError
from ...supervisor_rpc.states import (
    RUNNING_STATES,
    SIGNALLABLE_STATES,
    Fault,
    ProcessState,
    SupervisorState,
)
from ..config import AUTO
from ..datatypes import signal_number
from ..process import Process
from ..spawn import NotFound, SpawnError
from .base import Result, capped
from .dispatch import RPCError
from .logs import LogMethods

API_VERSION = "3.0"
SUPERVISOR_VERSION = "4.3.0"
"""We implement supervisord 4.3.0's interface; clients gate features on this string."""


def startable(process: Process) -> bool:
    """What a group or all start acts on: a disabled process is passed by, as a running
    one is."""
    return not process.running and not process.disabled


class SupervisorNamespace(LogMethods):
    """`supervisor.*`: one instance per daemon run, bound to its Supervisor."""

    # -- daemon ----------------------------------------------------------------------------

    async def getAPIVersion(self) -> str:
        """The version of the RPC API used by supervisord.

        @return string version  version id
        """
        self._update()
        return API_VERSION

    async def getVersion(self) -> str:
        """Deprecated alias of getAPIVersion.

        @return string version  version id
        """
        return await self.getAPIVersion()

    async def getSupervisorVersion(self) -> str:
        """The version of the supervisor interface this daemon implements.

        @return string version  version id
        """
        self._update()
        return SUPERVISOR_VERSION

    async def getIdentification(self) -> str:
        """The identifier string of this daemon ([supervisord] identifier).

        @return string identifier  identifying string
        """
        self._update()
        return self._sup.config.server.identifier

    async def getState(self) -> Result:
        """The daemon's current state.

        @return struct result  {statecode, statename}
        """
        self._update()
        state = self._sup.state
        return {"statecode": int(state), "statename": state.name}

    async def getPID(self) -> int:
        """The daemon's process id.

        @return int pid
        """
        self._update()
        return os.getpid()

    async def shutdown(self) -> bool:
        """Shut down the daemon after stopping every process.

        @return boolean result always returns True unless error
        """
        self._update()
        self._sup.request_stop(SupervisorState.SHUTDOWN)
        return True

    async def restart(self) -> bool:
        """Restart the daemon: stop everything, reread the config, start again.

        @return boolean result  always return True unless error
        """
        self._update()
        self._sup.request_stop(SupervisorState.RESTARTING)
        return True

    async def reloadConfig(self) -> list[list[list[str]]]:
        """Reread the config file and report which groups it adds, changes and removes.

        @return array result  [[added, changed, removed]]
        """
        self._update()
        try:
            config = self._reread()
        except ConfigError as exc:
            raise RPCError(Fault.CANT_REREAD, exc) from None
        diff = self._sup.diff(config)
        self._sup.config = config
        return [[[g.name for g in diff.added], [g.name for g in diff.changed],
                 [g.name for g in diff.removed]]]

    async def addProcessGroup(self, name: str) -> bool:
        """Activate a group of the last read config.

        @param string name  name of process group to add
        @return boolean result  true if successful
        """
        self._update()
        config = self._sup.config.group(name)
        if config is None:
            raise RPCError(Fault.BAD_NAME, name)
        if not self._sup.add_group(config):
            raise RPCError(Fault.ALREADY_ADDED, name)
        self._sup.transition_group(self._sup.groups[name])
        return True

    async def removeProcessGroup(self, name: str) -> bool:
        """Remove a stopped group from the active configuration.

        @param string name  name of process group to remove
        @return boolean result  whether the removal was successful
        """
        self._update()
        if name not in self._sup.groups:
            raise RPCError(Fault.BAD_NAME, name)
        if not self._sup.remove_group(name):
            raise RPCError(Fault.STILL_RUNNING, name)
        return True

    # -- start / stop / signal -------------------------------------------------------------

    async def startProcess(self, name: str, wait: bool = True) -> Any:
        """Start a process.

        @param string name  process name (or group:name, or group:*)
        @param boolean wait  wait for the process to be fully started
        @return boolean result  always true unless error
        """
        self._update()
        group, process = self._group_and_process(name)
        if process is None:
            return await self.startProcessGroup(group.name, wait)
        return await self._start(process, wait, name)

    async def _start(self, process: Process, wait: Any, given: str | None = None) -> bool:
        # faults name the process as the caller did (`lazy:lazy` stays `lazy:lazy`); group
        # and all starts name it as supervisord's make_namespec does
        name = given or (process.namespec if process.group != process.name else process.name)
        try:
            self._sup.check_command(process)
        except NotFound as exc:
            raise RPCError(Fault.NO_FILE, exc) from None
        except SpawnError as exc:
            raise RPCError(Fault.NOT_EXECUTABLE, exc) from None
        if process.disabled:  # supervisorctl prints `NAME: ERROR (spawn error)`, exits 1
            raise RPCError(Fault.SPAWN_ERROR, f"{name} is disabled")
        if process.state in RUNNING_STATES:
            raise RPCError(Fault.ALREADY_STARTED, name)
        if process.state == ProcessState.UNKNOWN:
            raise RPCError(Fault.FAILED, f"{name} is in an unknown process state")
        process.spawn()
        # supervisord reaps here too, but its child has not even exec'd yet: an exit is only
        # seen later, and startProcess(name, False) returns True for a program that fails
        # once started; ours has exec'd (the spawn waits for it), so reaping now would turn
        # a quick exit into SPAWN_ERROR where supervisord says True
        if process.spawnerr:  # the spawn itself failed (pipes, fork)
            raise RPCError(Fault.SPAWN_ERROR, name)
        process.transition()
        while wait and process.state != ProcessState.RUNNING:
            if process.spawnerr:
                raise RPCError(Fault.SPAWN_ERROR, name)
            if process.state not in (ProcessState.STARTING, ProcessState.RUNNING):
                raise RPCError(Fault.ABNORMAL_TERMINATION, name)
            await self._sup.wait_change(process)
        if wait and process.spawnerr:
            raise RPCError(Fault.SPAWN_ERROR, name)
        return True

    async def startProcessGroup(self, name: str, wait: bool = True) -> list[Result]:
        """Start every process of a group.

        @param string name  the group name
        @param boolean wait  wait for each process to be fully started
        @return array result  an array of process status info structs
        """
        self._update()
        group = self._sup.groups.get(name)
        if group is None:
            raise RPCError(Fault.BAD_NAME, name)
        return await self._each(group.by_priority(), startable,
                                lambda p: self._start(p, wait))

    async def startAllProcesses(self, wait: bool = True) -> list[Result]:
        """Start every process of every group.

        @param boolean wait  wait for each process to be fully started
        @return array result  an array of process status info structs
        """
        self._update()
        return await self._each(self._all_processes(), startable,
                                lambda p: self._start(p, wait))

    async def stopProcess(self, name: str, wait: bool = True) -> Any:
        """Stop a process.

        @param string name  the process to stop (or group:name, or group:*)
        @param boolean wait  wait for the process to be fully stopped
        @return boolean result  always true unless error
        """
        self._update()
        group, process = self._group_and_process(name)
        if process is None:
            return await self.stopProcessGroup(group.name, wait)
        return await self._stop(process, wait, name)

    async def stopProcessGroup(self, name: str, wait: bool = True) -> list[Result]:
        """Stop every process of a group.

        @param string name  the group name
        @param boolean wait  wait for each process to be fully stopped
        @return array result  an array of process status info structs
        """
        self._update()
        group = self._sup.groups.get(name)
        if group is None:
            raise RPCError(Fault.BAD_NAME, name)
        return await self._each(group.by_priority(), lambda p: p.stoppable,
                                lambda p: self._stop(p, wait))

    async def stopAllProcesses(self, wait: bool = True) -> list[Result]:
        """Stop every process.

        @param boolean wait  wait for each process to be fully stopped
        @return array result  an array of process status info structs
        """
        self._update()
        return await self._each(self._all_processes(), lambda p: p.stoppable,
                                lambda p: self._stop(p, wait))

    async def signalProcess(self, name: str, signal: Any) -> Any:
        """Send any signal to a process.

        @param string name  the process (or group:name, or group:*)
        @param string signal  signal name ('HUP') or number ('1')
        @return boolean result  always true unless error
        """
        self._update()
        group, process = self._group_and_process(name)
        if process is None:
            return await self.signalProcessGroup(group.name, signal)
        return await self._signal(process, signal, name)

    async def _signal(self, process: Process, signal: Any, name: str | None = None) -> bool:
        name = name or (process.namespec if process.group != process.name else process.name)
        try:
            signum = signal_number(str(signal))
        except ValueError:
            raise RPCError(Fault.BAD_SIGNAL, signal) from None
        if process.state not in SIGNALLABLE_STATES:
            raise RPCError(Fault.NOT_RUNNING, name)
        message = process.signal(signum)
        if message is not None:
            raise RPCError(Fault.FAILED, message)
        return True

    async def signalProcessGroup(self, name: str, signal: Any) -> list[Result]:
        """Send a signal to every process of a group.

        @param string name  the group name
        @param string signal  signal name ('HUP') or number ('1')
        @return array result  an array of process status info structs
        """
        self._update()
        group = self._sup.groups.get(name)
        if group is None:
            raise RPCError(Fault.BAD_NAME, name)
        return await self._each(group.by_priority(), lambda p: p.state in SIGNALLABLE_STATES,
                                lambda p: self._signal(p, signal))

    async def signalAllProcesses(self, signal: Any) -> list[Result]:
        """Send a signal to every process.

        @param string signal  signal name ('HUP') or number ('1')
        @return array result  an array of process status info structs
        """
        self._update()
        return await self._each(self._all_processes(), lambda p: p.state in SIGNALLABLE_STATES,
                                lambda p: self._signal(p, signal))

    # -- information -----------------------------------------------------------------------

    async def getAllConfigInfo(self) -> list[Result]:
        """Every process of the last read config, one struct each.

        @return array result  an array of process config info structs
        """
        self._update()
        infos = []
        for group in self._sup.config.groups:
            active = self._sup.groups.get(group.name)
            for pc in group.processes:
                info: Result = {
                    "autostart": pc.autostart, "directory": pc.directory, "uid": pc.uid,
                    "command": pc.command, "exitcodes": list(pc.exitcodes),
                    "group": group.name, "group_prio": group.priority,
                    "inuse": active is not None, "killasgroup": pc.killasgroup,
                    "name": pc.name, "process_prio": pc.priority,
                    "redirect_stderr": pc.redirect_stderr, "startretries": pc.startretries,
                    "startsecs": pc.startsecs, "stopsignal": pc.stopsignal,
                    "stopwaitsecs": pc.stopwaitsecs, "serverurl": pc.serverurl,
                }
                for channel_name, channel in (("stdout", pc.stdout), ("stderr", pc.stderr)):
                    logfile = channel.logfile
                    if logfile == AUTO and active is not None and pc.name in active.processes:
                        logfile = self._sup.channel(active.processes[pc.name], channel_name).path
                    info[f"{channel_name}_capture_maxbytes"] = channel.capture_maxbytes
                    info[f"{channel_name}_events_enabled"] = channel.events_enabled
                    info[f"{channel_name}_logfile"] = "auto" if logfile == AUTO else logfile
                    info[f"{channel_name}_logfile_backups"] = channel.backups
                    info[f"{channel_name}_logfile_maxbytes"] = channel.maxbytes
                    info[f"{channel_name}_syslog"] = channel.syslog
                infos.append({k: "none" if v is None else v for k, v in info.items()})
        infos.sort(key=lambda info: info["name"])
        return infos

    def _info(self, process: Process, now: float) -> Result:
        stdout = self._sup.channel(process, "stdout").path or ""
        return {
            "name": process.name,
            "group": process.group,
            "start": capped(process.laststart),
            "stop": capped(process.laststop),
            "now": capped(now),
            "state": int(process.state),
            "statename": process.state.name,
            "spawnerr": process.spawnerr or "",
            "exitstatus": process.exitstatus or 0,
            "logfile": stdout,
            "stdout_logfile": stdout,
            "stderr_logfile": self._sup.channel(process, "stderr").path or "",
            "pid": process.pid,
            "description": process.describe(now),
        }

    async def getProcessInfo(self, name: str) -> Result:
        """Information about one process.

        @param string name  the name of the process (or group:name)
        @return struct result  a structure containing data about the process
        """
        self._update()
        return self._info(self._process(name), time.time())

    async def getAllProcessInfo(self) -> list[Result]:
        """Information about every process, sorted by group and name.

        @return array result  an array of process status results
        """
        self._update()
        now = time.time()
        return [self._info(p, now) for p in self._all_processes(lexical=True)]

    async def sendProcessStdin(self, name: str, chars: Any) -> bool:
        """Write characters to a process's stdin.

        @param string name  the process name to send to (or group:name)
        @param string chars  the character data to send to the process
        @return boolean result  always return True unless error
        """
        self._update()
        if not isinstance(chars, str | bytes):
            raise RPCError(Fault.INCORRECT_PARAMETERS, chars)
        data = chars.encode("utf-8") if isinstance(chars, str) else chars
        process = self._process(name)
        if not process.pid or process.killing:
            raise RPCError(Fault.NOT_RUNNING, name)
        try:
            self._sup.write_stdin(process, data)
        except BrokenPipeError:
            raise RPCError(Fault.NO_FILE, name) from None
        return True

    async def sendRemoteCommEvent(self, type: str, data: str) -> bool:
        """Send a REMOTE_COMMUNICATION event to listeners that subscribe to it.

        @param string type  string for the "type" key in the event header
        @param string data  the data for the event body
        @return boolean result  always true unless error
        """
        self._sup.notify_remote(str(type), str(data))
        return True
