"""The last process state changes, numbered by the daemon's change count, for the console.

A console polls every few seconds, and a snapshot shows only where each process is now: a
program that crashes and is restarted between two polls leaves nothing in it (Supervisor
clears the exit status when it spawns). With the transitions since its last poll, the console
records every start and every crash as the daemon saw them, with their exit status and time.
The log is a ring: a console that has been away longer than its length gets the snapshot
alone and is told so, instead of a silently partial list.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, NamedTuple

from ..supervisor_rpc.states import ProcessState

RING = 512  # transitions kept: a crash loop restarts about once a second


class Transition(NamedTuple):
    change: int  # the daemon's change count right after this change
    time: float  # wall clock
    group: str
    name: str
    from_state: ProcessState
    to_state: ProcessState
    pid: int  # the child's, also once it has been reaped
    exitstatus: int
    expected: bool

    def wire(self) -> dict[str, Any]:
        """As `cesi.getChangesSince` lists it."""
        return {"time": self.time, "group": self.group, "name": self.name,
                "from_state": int(self.from_state), "to_state": int(self.to_state),
                "pid": self.pid, "exitstatus": self.exitstatus, "expected": self.expected}


class TransitionLog:
    """The newest `RING` transitions, and the newest change number that fell off the ring."""

    def __init__(self, size: int = RING) -> None:
        self._ring: deque[Transition] = deque(maxlen=size)
        self._forgotten = 0  # every change numbered up to this one may be missing

    def add(self, change: int, group: str, name: str, from_state: ProcessState,
            to_state: ProcessState, pid: int, exitstatus: int | None, expected: bool) -> None:
        if len(self._ring) == self._ring.maxlen:
            self._forgotten = self._ring[0].change
        self._ring.append(Transition(change, time.time(), group, name, from_state, to_state,
                                     pid, exitstatus or 0, expected))

    def since(self, change: int) -> list[Transition] | None:
        """Every transition after change number `change`, oldest first; None when some of
        them are no longer kept."""
        if change < self._forgotten:
            return None
        return [t for t in self._ring if t.change > change]
