"""cesi-agentctl commands on the daemon and its config: version, avail, reread, add,
remove, update, shutdown, reload."""

from __future__ import annotations

import errno
import xmlrpc.client

from ...supervisor_rpc.states import Fault
from .base import GENERIC, CommandBase, make_namespec


class ConfigCommands(CommandBase):
    """cesi-agentctl commands on the daemon and its config: version, avail, reread, add,"""

    def do_version(self, arg: str) -> None:
        if arg:
            return self.usage_error("Error: version accepts no arguments", "version")
        if self.upcheck():
            self.output(self.supervisor.getSupervisorVersion())

    def do_avail(self, arg: str) -> None:
        if arg:
            return self.usage_error("Error: avail accepts no arguments", "avail")
        try:
            infos = self.supervisor.getAllConfigInfo()
        except xmlrpc.client.Fault as exc:
            self.exitstatus = GENERIC
            if exc.faultCode != Fault.SHUTDOWN_STATE:
                raise
            self.output("ERROR: supervisor shutting down")
            return
        for info in infos:
            name = make_namespec(info["group"], info["name"])
            inuse = "in use" if info["inuse"] else "avail"
            auto = "auto" if info["autostart"] else "manual"
            self.output(f"{name:<32} {inuse:<9} {auto:<9} "
                        f"{info['group_prio']}:{info['process_prio']}")

    def do_reread(self, arg: str) -> None:
        if arg:
            return self.usage_error("Error: reread accepts no arguments", "reread")
        try:
            added, changed, removed = self.supervisor.reloadConfig()[0]
        except xmlrpc.client.Fault as exc:
            self.exitstatus = GENERIC
            if exc.faultCode == Fault.SHUTDOWN_STATE:
                self.output("ERROR: supervisor shutting down")
            elif exc.faultCode == Fault.CANT_REREAD:
                self.output(f"ERROR: {exc.faultString}")
            else:
                raise
            return
        changes = {**dict.fromkeys(added, "available"), **dict.fromkeys(changed, "changed"),
                   **dict.fromkeys(removed, "disappeared")}
        for name in sorted(changes):
            self.output(f"{name}: {changes[name]}")
        if not changes:
            self.output("No config updates to processes")

    def do_add(self, arg: str) -> None:
        for name in arg.split():
            try:
                self.supervisor.addProcessGroup(name)
            except xmlrpc.client.Fault as exc:
                if exc.faultCode == Fault.ALREADY_ADDED:
                    self.output("ERROR: process group already active")
                    continue
                self.exitstatus = GENERIC
                if exc.faultCode == Fault.SHUTDOWN_STATE:
                    self.output("ERROR: shutting down")
                elif exc.faultCode == Fault.BAD_NAME:
                    self.output(f"ERROR: no such process/group: {name}")
                else:
                    raise
            else:
                self.output(f"{name}: added process group")

    def do_remove(self, arg: str) -> None:
        for name in arg.split():
            try:
                self.supervisor.removeProcessGroup(name)
            except xmlrpc.client.Fault as exc:
                self.exitstatus = GENERIC
                if exc.faultCode == Fault.STILL_RUNNING:
                    self.output(f"ERROR: process/group still running: {name}")
                elif exc.faultCode == Fault.BAD_NAME:
                    self.output(f"ERROR: no such process/group: {name}")
                else:
                    raise
            else:
                self.output(f"{name}: removed process group")

    def do_update(self, arg: str) -> None:
        rpc = self.supervisor
        try:
            added, changed, removed = rpc.reloadConfig()[0]
        except xmlrpc.client.Fault as exc:
            self.exitstatus = GENERIC
            if exc.faultCode != Fault.SHUTDOWN_STATE:
                raise
            self.output("ERROR: already shutting down")
            return
        wanted = set(arg.split()) - {"all"} if "all" not in arg.split() else set()
        if wanted:
            known = {info["group"] for info in rpc.getAllProcessInfo()} | set(added)
            for name in sorted(wanted - known, key=arg.split().index):
                self.output(f"ERROR: no such group: {name}")
                self.exitstatus = GENERIC
        for name in removed:
            if wanted and name not in wanted:
                continue
            results = rpc.stopProcessGroup(name)
            self.output(f"{name}: stopped")
            if any(r["status"] == Fault.FAILED for r in results):
                self.output(f"{name}: has problems; not removing")
                self.exitstatus = GENERIC
                continue
            rpc.removeProcessGroup(name)
            self.output(f"{name}: removed process group")
        for name in changed:
            if wanted and name not in wanted:
                continue
            rpc.stopProcessGroup(name)
            self.output(f"{name}: stopped")
            rpc.removeProcessGroup(name)
            rpc.addProcessGroup(name)
            self.output(f"{name}: updated process group")
        for name in added:
            if wanted and name not in wanted:
                continue
            rpc.addProcessGroup(name)
            self.output(f"{name}: added process group")

    def _confirm(self, question: str) -> bool:
        return not self.interactive or input(question).lower().startswith("y")

    def do_shutdown(self, arg: str) -> None:
        if arg:
            return self.usage_error("Error: shutdown accepts no arguments", "shutdown")
        if not self._confirm("Really shut the remote supervisord process down y/N? "):
            return
        try:
            self.supervisor.shutdown()
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Fault.SHUTDOWN_STATE:
                self.exitstatus = GENERIC
                raise
            self.output("ERROR: already shutting down")
        except OSError as exc:
            self.exitstatus = GENERIC
            if exc.errno == errno.ECONNREFUSED:
                self.output(f"ERROR: {self.options.serverurl} refused connection "
                            "(already shut down?)")
            elif exc.errno == errno.ENOENT:
                self.output(f"ERROR: {self.options.serverurl} no such file "
                            "(already shut down?)")
            else:
                raise
        else:
            self.output("Shut down")

    def do_reload(self, arg: str) -> None:
        if arg:
            return self.usage_error("Error: reload accepts no arguments", "reload")
        if not self._confirm("Really restart the remote supervisord process y/N? "):
            return
        try:
            self.supervisor.restart()
        except xmlrpc.client.Fault as exc:
            self.exitstatus = GENERIC
            if exc.faultCode != Fault.SHUTDOWN_STATE:
                raise
            self.output("ERROR: already shutting down")
        else:
            self.output("Restarted supervisord")
