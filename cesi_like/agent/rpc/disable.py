"""`cesi.disableProcess`, `cesi.enableProcess`, `cesi.getDisabled`: programs disabled for
good (see disabled.py). Unlisted, as the rest of `cesi.*`: supervisord has no such methods.

A disable is written to the state file before anything else happens, so an answer of True
means it survives a crash; if the file cannot be written the call fails and changes nothing.
Then the process is stopped as stopProcess stops it. An enable only allows starts again: it
starts nothing itself, so enabling a group is never a surprise start of all its members.
"""

from __future__ import annotations

from typing import Any

from ...supervisor_rpc.states import Fault
from ..process import Process
from .base import NamespaceBase, Result
from .dispatch import RPCError


class DisableMethods(NamespaceBase):
    """The `cesi.*` methods that disable and enable programs."""

    async def disableProcess(self, name: str, wait: bool = True) -> Any:
        """Disable a process (or every process of `group:*`) for good, and stop it.

        @param string name  process name (or group:name, or group:*)
        @param boolean wait  wait for the process to be fully stopped
        @return boolean result  true (an array of status structs for group:*)
        """
        self._update()
        processes = self._named(name)
        self._set(processes, True)
        results = await self._each(processes, lambda p: True, lambda p: self._stopped(p, wait))
        if len(processes) == 1 and not name.endswith(("*", ":")):
            return True
        order = {p.name: index for index, p in enumerate(processes)}
        return sorted(results, key=lambda r: order[r["name"]])  # not in the order they stopped

    async def enableProcess(self, name: str) -> Any:
        """Enable a disabled process (or every process of `group:*`): it can be started
        again, and autostart applies from the next start of the agent. Starts nothing.

        @param string name  process name (or group:name, or group:*)
        @return boolean result  true (an array of status structs for group:*)
        """
        self._update()
        processes = self._named(name)
        self._set(processes, False)
        if len(processes) == 1 and not name.endswith(("*", ":")):
            return True
        return [self._status(p, Fault.SUCCESS, "OK") for p in processes]

    async def getDisabled(self) -> list[str]:
        """The `group:name` of every disabled process, those of groups not in the current
        config included (they stay disabled if the group comes back).

        @return array result  names, sorted
        """
        return self._sup.disabled.names()

    def _named(self, name: str) -> list[Process]:
        if not isinstance(name, str):
            raise RPCError(Fault.INCORRECT_PARAMETERS, "name: a string")
        group, process = self._group_and_process(name)
        return [process] if process is not None else group.by_priority()

    def _set(self, processes: list[Process], disabled: bool) -> None:
        try:
            self._sup.set_disabled(processes, disabled)
        except OSError as exc:
            raise RPCError(Fault.FAILED, f"cannot write the state file "
                           f"{self._sup.disabled.path}: {exc.strerror}") from None

    async def _stopped(self, process: Process, wait: Any) -> Result | bool:
        """Stopped if it was running (or about to restart); a stopped one is left as it is."""
        if not process.stoppable:
            return True
        return await self._stop(process, wait)
