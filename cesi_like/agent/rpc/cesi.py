"""The `cesi.*` namespace: what cesi-agentd offers the console beyond Supervisor's interface.

Supervisor clients never call it (supervisord has no such namespace, and a console polling a
supervisord falls back to `getAllProcessInfo`). It makes polling cheap: a console polls every
node every two seconds, and on most polls nothing has changed but the clock, so the answer can
say so in a few bytes instead of re-sending every process. And it tells what each program
costs in CPU and memory, which Supervisor's interface does not.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from ...supervisor_rpc.states import Fault
from .. import procstats
from ..supervisor import Supervisor
from .dispatch import RPCError
from .namespace import SUPERVISOR_VERSION, SupervisorNamespace

MAX_TOKEN = 64


class CesiNamespace:
    """Change feed for the console's poller."""

    def __init__(self, supervisor: Supervisor, processes: SupervisorNamespace) -> None:
        self._sup = supervisor
        self._processes = processes
        # a token names this run of the agent as well as its change count, so a restarted
        # agent (whose count starts again at 0) is never taken for an unchanged one
        self._run = secrets.token_hex(6)

    async def getChangesSince(self, token: str) -> dict[str, Any]:
        """The daemon's state and version, its clock, and every process's info unless
        nothing but the clock has changed since the answer that carried `token`; with them,
        every process state change since that answer (oldest first), unless `token` is ""
        or from another run, or the changes are no longer all kept.

        @param string token  the token of the caller's last answer ("" for a full answer)
        @return struct result  {token, statecode, statename, version, now, changed,
            processes (only when changed), transitions (when changed and complete:
            [{time, group, name, from_state, to_state, pid, exitstatus, expected}])}
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            raise RPCError(Fault.INCORRECT_PARAMETERS, "token: a string from a previous answer")
        # the same shutdown guard as supervisor.*: SHUTDOWN_STATE while stopping
        state = await self._processes.getState()
        current = f"{self._run}:{self._sup.changes}"
        answer: dict[str, Any] = {"token": current, **state, "version": SUPERVISOR_VERSION,
                                  "now": int(time.time()), "changed": token != current}
        if answer["changed"]:
            answer["processes"] = await self._processes.getAllProcessInfo()
            run, _, count = token.partition(":")
            if run == self._run and count.isdigit():
                since = self._sup.transitions.since(int(count))
                if since is not None:
                    answer["transitions"] = [t.wire() for t in since]
        return answer

    async def getProcessStats(self) -> dict[str, Any]:
        """CPU time and resident memory of every running process, its descendants included,
        from /proc (read off the event loop). CPU use is the difference of two answers'
        cpu_seconds over the difference of their `now`.

        @return struct result  {now (seconds, float), processes: [{group, name, pid,
            cpu_seconds (float), rss_kb, processes (the count, descendants included)}]}
        """
        running = [(process.group, process.name, process.pid)
                   for process in self._sup.all_processes() if process.pid]
        found = await asyncio.to_thread(procstats.usage, [pid for _, _, pid in running])
        now = time.time()
        return {"now": now, "processes": [
            {"group": group, "name": name, "pid": pid,
             "cpu_seconds": found[pid].cpu_seconds, "rss_kb": found[pid].rss_kb,
             "processes": found[pid].processes}
            for group, name, pid in running if pid in found]}
