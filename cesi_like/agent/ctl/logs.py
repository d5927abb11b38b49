"""cesi-agentctl commands on logs: tail, maintail, fg."""

from __future__ import annotations

import xmlrpc.client

from ...supervisor_rpc.states import Fault, ProcessState
from . import stream
from .base import GENERIC, CommandBase


class LogCommands(CommandBase):
    """cesi-agentctl commands on logs: tail, maintail, fg."""

    def do_tail(self, arg: str) -> None:
        if not self.upcheck():
            return
        args = arg.split()
        if not args:
            return self.usage_error("Error: too few arguments", "tail")
        if len(args) > 3:
            return self.usage_error("Error: too many arguments", "tail")
        modifier = args.pop(0) if args[0].startswith("-") else None
        if not args:
            self.output("Error: tail requires process name")
            self.exitstatus = GENERIC
            return
        name, channel = args[0], "stdout"
        if len(args) > 1:
            channel = args[-1].lower()
            if channel not in ("stdout", "stderr"):
                self.output(f"Error: bad channel {channel!r}")
                self.exitstatus = GENERIC
                return
        size = 1600
        if modifier == "-f":
            self.follow(f"/logtail/{name}/{channel}")
            return
        if modifier is not None:
            try:
                size = int(modifier[1:])
            except ValueError:
                self.output(f"Error: bad argument {modifier}")
                self.exitstatus = GENERIC
                return
        read = (self.supervisor.readProcessStdoutLog if channel == "stdout"
                else self.supervisor.readProcessStderrLog)
        try:
            self.output(read(name, -size, 0))
        except xmlrpc.client.Fault as exc:
            self.exitstatus = GENERIC
            reasons: dict[int, str] = {
                Fault.NO_FILE: "no log file", Fault.FAILED: "unknown error reading log",
                Fault.BAD_NAME: "no such process name"}
            if exc.faultCode not in reasons:
                raise
            self.output(f"{name}: ERROR ({reasons[exc.faultCode]})")

    def do_maintail(self, arg: str) -> None:
        if not self.upcheck():
            return
        args = arg.split()
        if len(args) > 1:
            return self.usage_error("Error: too many arguments", "maintail")
        size = 1600
        if args:
            if args[0] == "-f":
                self.follow("/mainlogtail")
                return
            try:
                if not args[0].startswith("-"):
                    raise ValueError(args[0])
                size = int(args[0][1:])
            except ValueError:
                self.output(f"Error: bad argument {args[0]}")
                self.exitstatus = GENERIC
                return
        try:
            self.output(self.supervisor.readLog(-size, 0))
        except xmlrpc.client.Fault as exc:
            self.exitstatus = GENERIC
            reasons: dict[int, str] = {
                Fault.NO_FILE: "no log file", Fault.FAILED: "unknown error reading log"}
            if exc.faultCode not in reasons:
                raise
            self.output(f"supervisord: ERROR ({reasons[exc.faultCode]})")

    def follow(self, path: str) -> None:
        """Stream a /logtail or /mainlogtail URL until Ctrl-C."""
        self.output("==> Press Ctrl-C to exit <==")
        try:
            stream.copy_stream(self.options, path, self.out)
        except KeyboardInterrupt:
            self.output("")

    def do_fg(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            return self.usage_error("ERROR: no process name supplied", "fg")
        if len(names) > 1:
            self.output("ERROR: too many process names supplied")
            self.exitstatus = GENERIC
            return
        name = names[0]
        try:
            info = self.supervisor.getProcessInfo(name)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Fault.BAD_NAME:
                self.output(f"ERROR: {exc}")
                return
            self.output("ERROR: bad process name supplied")
            self.exitstatus = GENERIC
            return
        if info["state"] != ProcessState.RUNNING:
            self.output("ERROR: process not running")
            self.exitstatus = GENERIC
            return
        self.output("==> Press Ctrl-C to exit <==")
        self.output(stream.foreground(self.options, self.supervisor, name, self.out))

