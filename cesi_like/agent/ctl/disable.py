"""cesi-agentctl disable and enable: programs disabled for good, a cesi-agentd extension
(supervisord has no such call; see agent/disabled.py)."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any

from ...supervisor_rpc.states import Fault
from .base import GENERIC, INVALID_ARGS, CommandBase, make_namespec, split_namespec


class DisableCommands(CommandBase):
    """cesi-agentctl disable and enable."""

    def do_disable(self, arg: str) -> None:
        self._each("disable", arg, self.cesi.disableProcess, "disabled")

    def do_enable(self, arg: str) -> None:
        self._each("enable", arg, self.cesi.enableProcess, "enabled")

    def _each(self, command: str, arg: str, call: Callable[[str], Any], done: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names or "all" in names:
            return self.usage_error(f"Error: {command} requires process or group names "
                                    "(not 'all')", command, INVALID_ARGS)
        for name in names:
            group, process = split_namespec(name)
            try:
                answer = call(name)
            except xmlrpc.client.Fault as exc:
                self.exitstatus = GENERIC
                if exc.faultCode == Fault.UNKNOWN_METHOD:
                    self.output(f"ERROR: {self.options.serverurl} cannot {command} programs "
                                "(it is not cesi-agentd)")
                    return
                what = "group" if process is None else "process"
                if exc.faultCode == Fault.BAD_NAME:
                    self.output(f"{name}: ERROR (no such {what})")
                else:
                    self.output(f"{name}: ERROR ({exc.faultString})")
                continue
            if isinstance(answer, list):
                for result in answer:
                    self.output(f"{make_namespec(result['group'], result['name'])}: {done}")
            else:
                self.output(f"{make_namespec(group, process or group)}: {done}")
