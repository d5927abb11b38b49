"""cesi-agentctl commands on processes: status, pid, start, stop, restart, signal, clear,
open."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any

from ...supervisor_rpc.states import STOPPED_STATES, Fault
from .base import (
    CLEAR_ERRORS,
    GENERIC,
    INVALID_ARGS,
    NOT_RUNNING,
    SIGNAL_ERRORS,
    START_ERRORS,
    STATUS_NOT_RUNNING,
    STATUS_UNKNOWN,
    CommandBase,
    _with_url,
    make_namespec,
    result_line,
    split_namespec,
)


class ProcessCommands(CommandBase):
    """cesi-agentctl commands on processes: status, pid, start, stop, restart, signal, clear,
open."""

    def do_status(self, arg: str) -> None:
        if not self.upcheck():
            self.exitstatus = STATUS_UNKNOWN
            return
        infos = self.supervisor.getAllProcessInfo()
        names = arg.split()
        matching = infos
        if names and "all" not in names:
            matching = []
            for name in names:
                group, process = split_namespec(name)
                found = [i for i in infos if i["group"] == group
                         and (process is None or i["name"] == process)]
                if not found:
                    what = "group" if process is None else "process"
                    self.output(f"{group if process is None else name}: ERROR (no such {what})")
                    self.exitstatus = STATUS_UNKNOWN
                matching += found
        specs = [make_namespec(i["group"], i["name"]) for i in matching]
        width = max([30, *map(len, specs)]) + 3
        for spec, info in zip(specs, matching, strict=True):
            self.output(f"{spec:<{width}}{info['statename']:<10}{info['description']}")
        if any(info["state"] in STOPPED_STATES for info in matching):
            self.exitstatus = STATUS_NOT_RUNNING

    def do_pid(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.output(str(self.supervisor.getPID()))
        elif "all" in names:
            for info in self.supervisor.getAllProcessInfo():
                self.output(str(info["pid"]))
        else:
            for name in names:
                try:
                    pid = self.supervisor.getProcessInfo(name)["pid"]
                except xmlrpc.client.Fault as exc:
                    self.exitstatus = GENERIC
                    if exc.faultCode != Fault.BAD_NAME:
                        raise
                    self.output(f"No such process {name}")
                    continue
                self.output(str(pid))
                if pid == 0:
                    self.exitstatus = NOT_RUNNING

    def _each_name(
        self,
        names: list[str],
        single: Callable[[str], Any],
        group_call: Callable[[str], list[dict[str, Any]]],
        all_call: Callable[[], list[dict[str, Any]]],
        success: str,
        errors: dict[int, str],
        ignored: int | None,
        group_error_status: int = GENERIC,
    ) -> None:
        """The shared shape of start, stop, signal and clear: `all`, `group:*`, or names."""
        if "all" in names:
            for result in all_call():
                self.output(result_line(result, success, errors))
                self.fault_status(result["status"], ignored)
            return
        for name in names:
            group, process = split_namespec(name)
            if process is None:
                try:
                    results = group_call(group)
                except xmlrpc.client.Fault as exc:
                    if exc.faultCode != Fault.BAD_NAME:
                        self.exitstatus = GENERIC
                        raise
                    self.output(f"{group}: ERROR (no such group)")
                    self.exitstatus = group_error_status
                    continue
                for result in results:
                    self.output(result_line(result, success, errors))
                    self.fault_status(result["status"], ignored)
                continue
            try:
                single(name)
            except xmlrpc.client.Fault as exc:
                fault = {"status": exc.faultCode, "name": process, "group": group,
                         "description": exc.faultString}
                self.output(result_line(fault, success, errors))
                self.fault_status(exc.faultCode, ignored)
            else:
                self.output(f"{make_namespec(group, process)}: {success}")

    def do_start(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            return self.usage_error("Error: start requires a process name", "start",
                                    INVALID_ARGS)
        rpc = self.supervisor
        self._each_name(names, rpc.startProcess, rpc.startProcessGroup, rpc.startAllProcesses,
                        "started", START_ERRORS, Fault.ALREADY_STARTED, INVALID_ARGS)

    def do_stop(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            return self.usage_error("Error: stop requires a process name", "stop")
        rpc = self.supervisor
        self._each_name(names, rpc.stopProcess, rpc.stopProcessGroup, rpc.stopAllProcesses,
                        "stopped", SIGNAL_ERRORS, Fault.NOT_RUNNING)

    def do_restart(self, arg: str) -> None:
        if not self.upcheck():
            return
        if not arg.split():
            return self.usage_error("Error: restart requires a process name", "restart")
        self.do_stop(arg)
        self.do_start(arg)

    def do_signal(self, arg: str) -> None:
        if not self.upcheck():
            return
        args = arg.split()
        if len(args) < 2:
            return self.usage_error(
                "Error: signal requires a signal name and a process name", "signal")
        sig, names = args[0], args[1:]
        rpc = self.supervisor
        self._each_name(names, lambda n: rpc.signalProcess(n, sig),
                        lambda g: rpc.signalProcessGroup(g, sig),
                        lambda: rpc.signalAllProcesses(sig), "signalled", SIGNAL_ERRORS, None)

    def do_clear(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            return self.usage_error("Error: clear requires a process name", "clear")
        rpc = self.supervisor
        if "all" in names:
            for result in rpc.clearAllProcessLogs():
                self.output(result_line(result, "cleared", CLEAR_ERRORS))
                self.fault_status(result["status"])
            return
        for name in names:
            group, process = split_namespec(name)
            try:
                rpc.clearProcessLogs(name)
            except xmlrpc.client.Fault as exc:
                fault = {"status": exc.faultCode, "name": process, "group": group,
                         "description": exc.faultString}
                self.output(result_line(fault, "cleared", CLEAR_ERRORS))
                self.fault_status(exc.faultCode)
            else:
                self.output(f"{make_namespec(group, process or group)}: cleared")

    def do_open(self, arg: str) -> None:
        url = arg.strip()
        if not url.startswith(("unix://", "http://")):
            self.output("ERROR: url must be http:// or unix://")
            self.exitstatus = GENERIC
            return
        self.options = _with_url(self.options, url)
        self._proxy = None
        previous = self.exitstatus
        self.do_status("")
        self.exitstatus = previous
