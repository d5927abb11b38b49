"""A process group: the unit supervisord adds, removes, reloads and stops in priority order."""

from __future__ import annotations

from ..supervisor_rpc.states import ProcessState
from .config import GroupConfig
from .process import Process


class ProcessGroup:
    """The processes of one `[program:x]`, `[group:x]` or `[eventlistener:x]`."""

    def __init__(self, config: GroupConfig, processes: list[Process]) -> None:
        self.config = config
        self.processes = {p.name: p for p in processes}

    @property
    def name(self) -> str:
        return self.config.name

    def by_priority(self) -> list[Process]:
        """Processes in start order: ascending priority, then name."""
        return sorted(self.processes.values(), key=lambda p: (p.config.priority, p.name))

    def unstopped(self) -> list[Process]:
        return [p for p in self.processes.values() if not p.stopped]

    def stop_all(self) -> None:
        """supervisord's shutdown step for one group: signal all at once, in reverse priority."""
        for process in reversed(self.by_priority()):
            if process.state in (ProcessState.RUNNING, ProcessState.STARTING):
                process.stop()
            elif process.state == ProcessState.BACKOFF:
                process.give_up()
