"""The shared part of the `supervisor.*` namespace: lookups, the shutdown guard, and
supervisord's way of applying one call to many processes."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Awaitable, Callable
from typing import Any

from ...supervisor_rpc.states import STOPPED_STATES, Fault, SupervisorState
from ..config import Config
from ..groups import ProcessGroup
from ..process import Process
from ..supervisor import Supervisor
from .dispatch import RPCError, ServerError

MAX_INT = 2**31 - 1

Result = dict[str, Any]


def capped(value: float) -> int:
    """XML-RPC ints are 32-bit: times saturate instead of breaking the response in 2038."""
    return min(int(value), MAX_INT)


def text(data: bytes) -> str:
    """A window of a log as the answer's string. One that cuts a UTF-8 character at either
    end is not answered with an invented character: supervisord answers HTTP 500 there, and
    clients widen their window on that. (Bytes that are no UTF-8 at all, inside the window,
    are shown as U+FFFD; supervisord refuses every window holding them.)"""
    if data[:1] and 0x80 <= data[0] < 0xC0:
        raise ServerError("the window begins inside a UTF-8 character")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    decoded: str = decoder.decode(data)  # an unfinished character stays in its buffer
    if decoder.getstate()[0]:
        raise ServerError("the window ends inside a UTF-8 character")
    return decoded


class NamespaceBase:
    """State and helpers shared by the method groups of `supervisor.*`."""

    def __init__(self, supervisor: Supervisor, reread: Callable[[], Config]) -> None:
        self._sup = supervisor
        self._reread = reread

    def _update(self) -> None:
        if self._sup.state < SupervisorState.RUNNING:
            raise RPCError(Fault.SHUTDOWN_STATE)

    def _group_and_process(self, name: str) -> tuple[ProcessGroup, Process | None]:
        group, process = self._sup.lookup(name)
        if group is None:
            raise RPCError(Fault.BAD_NAME, name)
        if process is None and ":" not in name:
            raise RPCError(Fault.BAD_NAME, name)
        if process is None and name.split(":", 1)[1] not in ("", "*"):
            raise RPCError(Fault.BAD_NAME, name)
        return group, process

    def _process(self, name: str) -> Process:
        _, process = self._group_and_process(name)
        if process is None:
            raise RPCError(Fault.BAD_NAME, name)
        return process

    def _all_processes(self, lexical: bool = False) -> list[Process]:
        if lexical:
            return self._sup.all_processes()
        return [p for g in self._sup.ordered_groups() for p in g.by_priority()]

    @staticmethod
    def _status(process: Process, code: int, description: str) -> Result:
        return {"name": process.name, "group": process.group, "status": int(code),
                "description": description}

    async def _each(
        self,
        processes: list[Process],
        wanted: Callable[[Process], bool],
        action: Callable[[Process], Awaitable[Any]],
    ) -> list[Result]:
        """Apply `action` to every wanted process at once, as supervisord's make_allfunc does,
        and report as it does: first what was decided at once (refusals, calls that did not
        wait), in list order, then what had to wait, in list order."""
        chosen = [p for p in processes if wanted(p)]
        tasks = [asyncio.ensure_future(action(p)) for p in chosen]
        await asyncio.sleep(0)  # each runs to its first wait, or to its end
        at_once = [task.done() for task in tasks]
        await asyncio.gather(*tasks, return_exceptions=True)
        order = [i for i, done in enumerate(at_once) if done]
        order += [i for i, done in enumerate(at_once) if not done]
        results: list[Result] = []
        for process, task in ((chosen[i], tasks[i]) for i in order):
            outcome = task.exception() or task.result()
            if isinstance(outcome, RPCError):
                results.append(self._status(process, outcome.code, outcome.text))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(self._status(process, Fault.SUCCESS, "OK"))
        return results

    async def _stop(self, process: Process, wait: Any, name: str | None = None) -> bool:
        name = name or (process.namespec if process.group != process.name else process.name)
        if not process.stoppable:
            raise RPCError(Fault.NOT_RUNNING, name)
        message = process.stop()
        if message is not None:
            raise RPCError(Fault.FAILED, message)
        self._sup.reap()
        while wait and process.state not in STOPPED_STATES:
            process.stop_report()  # `waiting for NAME to stop`, every 2 s, as supervisord
            await self._sup.wait_change(process, timeout=2.0)
        return True
