"""Supervisor's events and the event-listener protocol, as supervisord 4.3 speaks them.

An event has a type name (`PROCESS_STATE_RUNNING`, `TICK_5`...) and a text payload. Each
`[eventlistener:x]` pool subscribes to type names; a name also covers its subtypes
(`PROCESS_STATE` covers every `PROCESS_STATE_*`, `EVENT` covers all). A pool buffers what it
accepted (at most `buffer_size`, dropping the oldest) and hands each event to one READY member:

    listener                     agent
    READY\\n            ->
                       <-  ver:3.0 server:ID serial:N pool:P poolserial:M eventname:E len:L\\n
                           + L characters of payload
    RESULT 2\\nOK       ->  done (anything but OK: the event is put back at the head)

The pool's `result_handler` judges the RESULT body (see result_handlers). A member that writes
anything else, or whose result makes the handler fail, is UNKNOWN and gets no more events until
it restarts; its event goes back to the pool. A rejected event is offered again, as supervisord
does, but not at once: after `REJECTED_PAUSE` seconds, doubling with each rejection in a row
up to `MAX_REJECTED_PAUSE`, so a listener that rejects everything costs a few log lines a
minute instead of a busy loop (supervisord: 41,000 warnings in 6 s). Listeners are fed through
the daemon's non-blocking stdin queue, so a slow or stuck listener delays only its own pool,
never process management or the RPC.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..supervisor_rpc.states import ProcessState
from .config import GroupConfig
from .process import Process, TimerHandle
from .result_handlers import Verdict, judge

MAX_SERIAL = 2**63 - 1  # supervisord wraps its serials at sys.maxsize
READY = b"READY\n"
RESULT = b"RESULT "
MAX_RESULT_LINE = 64  # "RESULT <len>": longer without a newline is a protocol violation
REJECTED_PAUSE = 0.1  # seconds before a rejected event is offered again...
MAX_REJECTED_PAUSE = 10.0  # ...doubling with each rejection in a row, up to this


class ListenerState(enum.IntEnum):
    """supervisord's EventListenerStates."""

    READY = 10  # waiting for an event
    BUSY = 20  # processing an event
    ACKNOWLEDGED = 30  # finished, not yet ready for the next
    UNKNOWN = 40  # broke the protocol: no more events


def covers(subscribed: str, name: str) -> bool:
    """Whether a subscription to `subscribed` receives events of type `name`."""
    return subscribed in ("EVENT", name) or name.startswith(subscribed + "_")


@dataclass
class Event:
    name: str
    payload: str
    serial: int | None = None  # given by the first pool that accepts it
    pool_serials: dict[str, int] = field(default_factory=dict)


def process_state_payload(process: Process, old: ProcessState, expected: bool) -> str:
    """`PROCESS_STATE_*` payloads, with the extra keys each state carries in supervisord."""
    parts = [f"processname:{process.name}", f"groupname:{process.group}",
             f"from_state:{old.name}"]
    new = process.state
    pid = process.pid or process.last_pid  # supervisord forgets the pid after the event
    if new in (ProcessState.STARTING, ProcessState.BACKOFF):
        parts.append(f"tries:{process.backoff}")
    elif new == ProcessState.EXITED:
        parts += [f"expected:{int(expected)}", f"pid:{pid}"]
    elif new in (ProcessState.RUNNING, ProcessState.STOPPING, ProcessState.STOPPED):
        parts.append(f"pid:{pid}")
    return " ".join(parts)


class PoolHost(Protocol):
    """What a pool needs from the daemon."""

    @property
    def identifier(self) -> str: ...

    def write_stdin(self, process: Process, data: bytes) -> None: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def debug(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...


@dataclass
class _Member:
    state: ListenerState = ListenerState.ACKNOWLEDGED
    pending: bytes = b""  # output not yet understood
    event: Event | None = None  # the event it is processing
    result_length: int | None = None
    result: bytes = b""


class ListenerPool:
    """One `[eventlistener:x]` pool: its subscriptions, buffer and members' protocol state."""

    def __init__(self, config: GroupConfig, members: list[Process], host: PoolHost) -> None:
        self.config = config
        self.members = {process: _Member() for process in members}
        self.host = host
        self.buffer: deque[Event] = deque()
        self.serial = -1
        self._rejections = 0  # in a row: how long the pool pauses before offering again
        self._paused: TimerHandle | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def wants(self, event_name: str) -> bool:
        return any(covers(subscribed, event_name) for subscribed in self.config.events)

    # -- events in -------------------------------------------------------------------------

    def accept(self, event: Event, head: bool = False) -> None:
        if self.name not in event.pool_serials:
            self.serial = 0 if self.serial == MAX_SERIAL else self.serial + 1
            event.pool_serials[self.name] = self.serial
        else:
            self.host.debug(f"rebuffering event {event.serial} for pool {self.name} "
                            f"(buf size={len(self.buffer)}, max={self.config.buffer_size})")
        if len(self.buffer) >= self.config.buffer_size and self.buffer:
            dropped = self.buffer.popleft()
            self.host.error(f"pool {self.name} event buffer overflowed, discarding event "
                            f"{dropped.serial}")
        if head:
            self.buffer.appendleft(event)
        else:
            self.buffer.append(event)

    def dispatch(self) -> None:
        """Hand buffered events, oldest first, to READY members while there are any."""
        while self.buffer and self._paused is None:
            member = next((p for p, m in self.members.items()
                           if p.state == ProcessState.RUNNING
                           and m.state == ListenerState.READY), None)
            if member is None:
                return
            event = self.buffer.popleft()
            self._send(member, event)

    def _send(self, process: Process, event: Event) -> None:
        envelope = (f"ver:3.0 server:{self.host.identifier} serial:{event.serial} "
                    f"pool:{self.name} poolserial:{event.pool_serials[self.name]} "
                    f"eventname:{event.name} len:{len(event.payload)}\n{event.payload}")
        try:
            self.host.write_stdin(process, envelope.encode("utf-8"))
        except OSError:
            self.host.debug(f"epipe occurred while sending event {event.serial} to listener "
                            f"{process.name}, listener state unchanged")
            self.accept(event, head=True)
            return
        member = self.members[process]
        member.event = event
        self._change(process, ListenerState.BUSY)
        self.host.debug(f"event {event.serial} sent to listener {process.name}")

    # -- members ---------------------------------------------------------------------------

    def member_changed(self, process: Process) -> None:
        """A member's process state changed: a fresh start speaks the protocol afresh; an
        exit gives its event back; a member that is now RUNNING may take events."""
        member = self.members.get(process)
        if member is None:
            return
        if process.state == ProcessState.STARTING or process.stopped:
            if member.event is not None:
                self.accept(member.event, head=True)
            self.members[process] = _Member()
        self.dispatch()

    def output(self, process: Process, data: bytes) -> None:
        """A member's stdout: the protocol (its log got the bytes already)."""
        member = self.members.get(process)
        if member is None or not data:
            return
        member.pending += data
        self._advance(process, member)
        self.dispatch()

    def _advance(self, process: Process, member: _Member) -> None:
        while member.pending:
            if member.state == ListenerState.UNKNOWN:
                member.pending = b""
            elif member.state == ListenerState.ACKNOWLEDGED:
                if len(member.pending) < len(READY):
                    return
                if member.pending.startswith(READY):
                    member.pending = member.pending[len(READY):]
                    member.event = None
                    self._change(process, ListenerState.READY)
                else:
                    self._violated(process, member)
            elif member.state == ListenerState.READY:
                self._violated(process, member)  # spurious output: supervisord is strict
            elif not self._read_result(process, member):
                return

    def _read_result(self, process: Process, member: _Member) -> bool:
        """Consume what there is of a RESULT; False when more bytes are needed."""
        if member.result_length is None:
            end = member.pending.find(b"\n")
            if end < 0:
                if len(member.pending) > MAX_RESULT_LINE:
                    self._bad_result_line(process, member, member.pending)
                return False
            line, member.pending = member.pending[:end], member.pending[end + 1:]
            try:
                member.result_length = int(line[len(RESULT):])
            except ValueError:
                self._bad_result_line(process, member, line)
                return True
            if not line.startswith(RESULT) or member.result_length < 0:
                self._bad_result_line(process, member, line)
                return True
        needed = member.result_length - len(member.result)
        member.result += member.pending[:needed]
        member.pending = member.pending[needed:]
        if len(member.result) < member.result_length:
            return False
        self._result(process, member, member.result)
        member.result, member.result_length = b"", None
        return True

    def _bad_result_line(self, process: Process, member: _Member, line: bytes) -> None:
        try:
            shown = line.decode("utf-8")
        except UnicodeDecodeError:
            shown = f"Undecodable: {line!r}"
        self.host.warn(f"{process.name}: bad result line: '{shown}'")
        self._violated(process, member)

    def _result(self, process: Process, member: _Member, result: bytes) -> None:
        event, member.event = member.event, None
        verdict, error = judge(self.config.handler, event, result)
        if verdict == Verdict.PROCESSED:
            self.host.debug(f"{process.name}: event was processed")
            self._rejections = 0
            self._change(process, ListenerState.ACKNOWLEDGED)
            return
        if verdict == Verdict.REJECTED:
            self.host.warn(f"{process.name}: event was rejected")
            self._change(process, ListenerState.ACKNOWLEDGED)
            self._pause()
        else:
            self.host.warn(f"{process.name}: event caused an error ({error})")
            self._change(process, ListenerState.UNKNOWN)
        if event is not None:
            self.accept(event, head=True)

    def _pause(self) -> None:
        """Hold the buffer back after a rejection, longer each time in a row."""
        delay = min(REJECTED_PAUSE * 2 ** self._rejections, MAX_REJECTED_PAUSE)
        self._rejections += 1
        if self._paused is not None:
            self._paused.cancel()
        self._paused = self.host.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._paused = None
        self.dispatch()

    def close(self) -> None:
        """The generation is over: no more pending work (a timer would keep the pool alive)."""
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None

    def _violated(self, process: Process, member: _Member) -> None:
        self._change(process, ListenerState.UNKNOWN)
        member.pending = b""
        if member.event is not None:
            self.accept(member.event, head=True)
            member.event = None

    def _change(self, process: Process, new: ListenerState) -> None:
        member = self.members[process]
        self.host.debug(f"{process.name}: {member.state.name} -> {new.name}")
        member.state = new
        if new == ListenerState.UNKNOWN:
            self.host.warn(f"{process.name}: has entered the UNKNOWN state and will no longer "
                           "receive events, this usually indicates the process violated the "
                           "eventlistener protocol")


class EventBus:
    """Delivers each event to every pool subscribed to its type; numbers what is delivered."""

    def __init__(self) -> None:
        self.pools: dict[str, ListenerPool] = {}
        self.serial = -1
        self._ticks: dict[int, int] = {}

    def publish(self, name: str, payload: str) -> None:
        takers = [pool for pool in self.pools.values() if pool.wants(name)]
        if not takers:
            return  # supervisord numbers only events some pool accepted
        self.serial = 0 if self.serial == MAX_SERIAL else self.serial + 1
        event = Event(name, payload, self.serial)
        for pool in takers:
            pool.accept(event)
        for pool in takers:
            pool.dispatch()

    def tick(self, now: float | None = None) -> None:
        """TICK_5/60/3600 when the clock enters a new 5 s / minute / hour slice (call every
        second or so); the first call only notes where the clock is, as supervisord does."""
        now = time.time() if now is None else now
        for period in (5, 60, 3600):
            this = int(now) - int(now) % period
            last = self._ticks.setdefault(period, this)
            if this != last:
                self._ticks[period] = this
                self.publish(f"TICK_{period}", f"when:{this}")


Publisher = Callable[[str, str], None]
