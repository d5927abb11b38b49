"""The daemon's heart: owns every group and process on one asyncio loop (no threads, no locks).

It is the `ProcessHost` of each Process (fork, kill, timers, logging), reaps children from
SIGCHLD, starts groups in priority order, and shuts them down one group at a time in reverse
priority as supervisord does.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import re
from collections.abc import Callable
from typing import NamedTuple

from ..supervisor_rpc.states import SIGNALLABLE_STATES, ProcessState, SupervisorState
from .capture import CaptureMode, Channel, PipeReader, channel_path
from .change_feed import TransitionLog
from .config import AUTO, ChannelConfig, Config, GroupConfig, ProcessConfig
from .disabled import DisabledStore
from .events import EventBus, ListenerPool, process_state_payload
from .groups import ProcessGroup
from .loglevel import LogLevel
from .logs import MainLog
from .process import Process, TimerHandle
from .spawn import SpawnEnvironment, fork_exec, resolve_command


def server_url(config: Config) -> str | None:
    """The URL children get as SUPERVISOR_SERVER_URL: the unix socket first, else TCP."""
    if config.unix_http is not None:
        return f"unix://{config.unix_http.file}"
    if config.inet_http is not None:
        return f"http://{config.inet_http.host or 'localhost'}:{config.inet_http.port}"
    return None


class Diff(NamedTuple):
    added: list[GroupConfig]
    changed: list[GroupConfig]
    removed: list[GroupConfig]


class Child:
    """What the daemon keeps for one process beyond its state: output channels and pipes."""

    def __init__(self, stdout: Channel, stderr: Channel) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_fd = -1
        self.stdin_pending = bytearray()
        self.readers: list[PipeReader] = []


class Supervisor:
    """All groups and processes of one config, and the rules for starting and stopping them."""

    def __init__(self, config: Config, log: MainLog, loop: asyncio.AbstractEventLoop,
                 disabled: DisabledStore | None = None) -> None:
        self.config = config
        self.disabled = disabled if disabled is not None else DisabledStore(
            config.server.statefile)
        self.log = log
        self.loop = loop
        self.state = SupervisorState.RUNNING
        self.groups: dict[str, ProcessGroup] = {}
        self.children: dict[Process, Child] = {}
        self.by_pid: dict[int, Process] = {}
        self.url = server_url(config)
        self.environment = SpawnEnvironment(os.environ, self.url)
        self._stop_queue: list[ProcessGroup] = []
        self._done: asyncio.Future[None] = loop.create_future()
        self._waiters: dict[Process, list[asyncio.Future[None]]] = {}
        self._shutdown_report_at = 0.0
        self._shutdown_check_pending = False
        self.on_state_change: list[Callable[[Process, ProcessState, bool], None]] = []
        # bumped whenever what getAllProcessInfo shows changes other than by the clock: the
        # console's change feed (`cesi.getChangesSince`) answers "nothing new" from it
        self.changes = 0
        self.transitions = TransitionLog()  # and what each process change was, for the feed
        self.events = EventBus()
        self._tick_timer: asyncio.TimerHandle | None = None
        self._shutdown_timer: asyncio.TimerHandle | None = None

    # -- ProcessHost -----------------------------------------------------------------------

    def start_child(self, process: Process) -> int:
        config = process.config
        child = self.children[process]
        filename, argv = resolve_command(config.command, self.environment.search_path(config))
        pid, pipes = fork_exec(config, filename, argv, self.environment.encoded(config))
        self.by_pid[pid] = process
        self._close_stdin(child)
        child.stdin_fd = pipes.stdin
        for fd, channel in ((pipes.stdout, child.stdout), (pipes.stderr, child.stderr)):
            if fd >= 0:
                child.readers.append(PipeReader(self.loop, fd, channel, child.readers.remove))
            # Create the log files right after this loop iteration: at startup that is after
            # every autostart child is spawned, so file creation does not delay them.
            self.loop.call_soon(self._open_channel, channel)
        return pid

    def _open_channel(self, channel: Channel) -> None:
        try:
            channel.open()
        except OSError as exc:
            self.log.error(f"could not open log file {channel.path}: {exc.strerror}")

    def _close_stdin(self, child: Child) -> None:
        if child.stdin_fd >= 0:
            if child.stdin_pending:
                self.loop.remove_writer(child.stdin_fd)
                child.stdin_pending.clear()
            os.close(child.stdin_fd)
            child.stdin_fd = -1

    def send_signal(self, process: Process, pid: int, signum: int) -> None:
        os.kill(pid, signum)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.loop.call_later(delay, callback)

    def monotonic(self) -> float:
        return self.loop.time()

    def accepting_starts(self) -> bool:
        return self.state > SupervisorState.RESTARTING

    def info(self, message: str) -> None:
        self.log.info(message)

    def warn(self, message: str) -> None:
        self.log.warn(message)

    def debug(self, message: str) -> None:
        self.log.debug(message)

    def critical(self, message: str) -> None:
        self.log.critical(message)

    def error(self, message: str) -> None:
        self.log.error(message)

    @property
    def identifier(self) -> str:
        return self.config.server.identifier

    def state_changed(self, process: Process, old: ProcessState, expected: bool) -> None:
        self.changes += 1
        # a child that was just reaped is still the one the change is about
        pid = process.pid or (process.last_pid if old in SIGNALLABLE_STATES else 0)
        self.transitions.add(self.changes, process.group, process.name, old, process.state,
                             pid, process.exitstatus, expected)
        self.events.publish(f"PROCESS_STATE_{process.state.name}",
                            process_state_payload(process, old, expected))
        pool = self.events.pools.get(process.group)
        if pool is not None:
            pool.member_changed(process)
        for future in self._waiters.pop(process, []):
            if not future.done():
                future.set_result(None)
        for callback in self.on_state_change:
            callback(process, old, expected)
        if (self.state <= SupervisorState.RESTARTING and process.stopped
                and not self._shutdown_check_pending):
            # many children stop in one reap: check the group once, after all of them
            self._shutdown_check_pending = True
            self.loop.call_soon(self._continue_shutdown)

    # -- groups ----------------------------------------------------------------------------

    def _auto_log_path(self, name: str, channel: str) -> str:
        """A fresh AUTO log name, as supervisord's mkstemp makes them; the file itself is
        created when the process is first spawned (see start_child)."""
        suffix = base64.b32encode(os.urandom(5)).decode().lower()
        identifier = self.config.server.identifier
        return os.path.join(
            self.config.server.childlogdir, f"{name}-{channel}---{identifier}-{suffix}.log"
        )

    def _make_process(self, process_config: ProcessConfig, listener: bool = False) -> Process:
        process = Process(process_config, self)
        process.disabled = process.namespec in self.disabled
        stdout, stderr = (self._channel(process_config.name, name, conf)
                          for name, conf in (("stdout", process_config.stdout),
                                             ("stderr", process_config.stderr)))
        self.children[process] = Child(stdout, stderr)
        for channel in (stdout, stderr):
            # a listener's stdout is the event protocol: no capture mode, no log events
            protocol = listener and channel is stdout
            events = channel.config.events_enabled and not protocol
            if channel.config.capture_maxbytes and not protocol:
                channel.capture = CaptureMode(channel.config.capture_maxbytes, functools.partial(
                    self._communicated, process, channel.name))
            if self.log.level <= LogLevel.DEBUG or events:
                channel.observers.append(functools.partial(
                    self._output, process, channel.name, protocol, events))
        return process

    def _output(self, process: Process, channel: str, protocol: bool, events: bool,
                data: bytes) -> None:
        """A piece of a child's output: supervisord's debug line in the main log, and a
        PROCESS_LOG_* event when the channel has events enabled. (A listener's protocol
        output is shown as supervisord's listener dispatcher shows it: as a bytes repr.)"""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = f"Undecodable: {data!r}"
        self.log.debug(f"{process.name!r} {channel} output:\n{repr(data) if protocol else text}")
        if events:
            self.events.publish(
                f"PROCESS_LOG_{channel.upper()}",
                f"processname:{process.name} groupname:{process.group} "
                f"pid:{process.pid or process.last_pid} channel:{channel}\n{text}")

    def _communicated(self, process: Process, channel: str, body: bytes) -> None:
        """A capture-mode message ended: a PROCESS_COMMUNICATION_* event."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = f"Undecodable: {body!r}"
        self.events.publish(f"PROCESS_COMMUNICATION_{channel.upper()}",
                            f"processname:{process.name} groupname:{process.group} "
                            f"pid:{process.pid or process.last_pid}\n{text}")
        self.log.debug(f"{process.name!r} {channel} emitted a comm event")

    def _channel(self, process_name: str, name: str, conf: ChannelConfig) -> Channel:
        path = channel_path(conf, lambda: self._auto_log_path(process_name, name))
        syslog = _syslog_sender(process_name) if conf.syslog else None
        return Channel(name, conf, path, self.config.server.strip_ansi, syslog, self.log.error,
                       private=conf.logfile == AUTO)

    def add_group(self, config: GroupConfig) -> bool:
        """Create a group's processes (not started here); False if the name is taken."""
        if config.name in self.groups:
            return False
        processes = [self._make_process(pc, config.kind == "eventlistener")
                     for pc in config.processes]
        self.groups[config.name] = ProcessGroup(config, processes)
        if config.kind == "eventlistener":
            pool = ListenerPool(config, processes, self)
            self.events.pools[config.name] = pool
            for process in processes:  # its stdout speaks the protocol (and is logged)
                self.children[process].stdout.listeners.append(
                    functools.partial(pool.output, process))
        self.changes += 1
        self.events.publish("PROCESS_GROUP_ADDED", f"groupname:{config.name}\n")
        return True

    def remove_group(self, name: str) -> bool:
        """Forget a stopped group; False while any of its processes still runs."""
        group = self.groups[name]
        if group.unstopped():
            return False
        for process in group.processes.values():
            child = self.children.pop(process)
            for channel in (child.stdout, child.stderr):
                channel.close()
            self._close_stdin(child)
        del self.groups[name]
        pool = self.events.pools.pop(name, None)
        if pool is not None:
            pool.close()
        self.changes += 1
        self.events.publish("PROCESS_GROUP_REMOVED", f"groupname:{name}\n")
        return True

    def ordered_groups(self) -> list[ProcessGroup]:
        """Groups in start order: ascending priority, then the order they were added in (by
        name at start, as supervisord sorts its configs; a group added later comes after
        the others of its priority, as in supervisord's dict)."""
        return sorted(self.groups.values(), key=lambda g: g.config.priority)

    def start(self) -> None:
        """Create every group and start the autostart processes at once, in priority order."""
        # in priority order, as supervisord adds them: listener pools (priority -1) exist
        # before the groups whose PROCESS_GROUP_ADDED they may want
        for group_config in sorted(self.config.groups, key=lambda g: (g.priority, g.name)):
            self.add_group(group_config)
        self.events.publish("SUPERVISOR_STATE_CHANGE_RUNNING", "")
        self._tick()
        for group in self.ordered_groups():
            for process in group.by_priority():
                process.transition()

    def set_disabled(self, processes: list[Process], disabled: bool) -> None:
        """Disable (or enable) processes for good: the state file first, so that if it
        cannot be written (OSError) nothing changes. A disabled process is not stopped
        here: the caller stops it as a stop is asked for."""
        names = [p.namespec for p in processes]
        if disabled:
            self.disabled.update(add=names)
        else:
            self.disabled.update(remove=names)
        for process in processes:
            if process.disabled != disabled:
                process.disabled = disabled
                self.changes += 1  # its description changed: the console's feed must say so
                self.log.info(f"{'disabled' if disabled else 'enabled'}: {process.name}")

    def transition_group(self, group: ProcessGroup) -> None:
        for process in group.by_priority():
            process.transition()

    def diff(self, new: Config) -> Diff:
        """Groups added, changed and removed between the running config and `new`."""
        current = {name: group.config for name, group in self.groups.items()}
        incoming = {g.name: g for g in new.groups}
        return Diff(
            added=[g for g in new.groups if g.name not in current],
            changed=[g for g in new.groups if g.name in current and current[g.name] != g],
            removed=[g for g in current.values() if g.name not in incoming],
        )

    def lookup(self, namespec: str) -> tuple[ProcessGroup | None, Process | None]:
        """`grp:name`, `grp:*`, `grp:` or `name`: the group, and the process when one is named."""
        group_name, colon, process_name = namespec.partition(":")
        group = self.groups.get(group_name)
        if group is None:
            return None, None
        if not colon:
            return group, group.processes.get(group_name)
        if process_name in ("", "*"):
            return group, None
        return group, group.processes.get(process_name)

    def all_processes(self) -> list[Process]:
        """Every process, sorted by group then name as getAllProcessInfo lists them."""
        return sorted(
            (p for g in self.groups.values() for p in g.processes.values()),
            key=lambda p: (p.group, p.name),
        )

    def channel(self, process: Process, name: str) -> Channel:
        """The `stdout` or `stderr` channel of a process."""
        child = self.children[process]
        return child.stdout if name == "stdout" else child.stderr

    def check_command(self, process: Process) -> None:
        """Raise NotFound/SpawnError now if spawning would fail to find the program."""
        resolve_command(process.config.command, self.environment.search_path(process.config))

    def write_stdin(self, process: Process, data: bytes) -> None:
        """Queue bytes for the child's stdin; written as the pipe accepts them.
        Raises BrokenPipeError when the child closed its end."""
        child = self.children[process]
        if child.stdin_fd < 0:
            raise BrokenPipeError(process.name)
        if child.stdin_pending:
            child.stdin_pending += data
            return
        try:
            written = os.write(child.stdin_fd, data)
        except BlockingIOError:
            written = 0
        if written < len(data):
            child.stdin_pending = bytearray(data[written:])
            self.loop.add_writer(child.stdin_fd, self._flush_stdin, child)

    def _flush_stdin(self, child: Child) -> None:
        try:
            written = os.write(child.stdin_fd, child.stdin_pending)
        except BlockingIOError:
            return
        except OSError:
            written = len(child.stdin_pending)  # the child is gone: drop what it cannot read
        del child.stdin_pending[:written]
        if not child.stdin_pending:
            self.loop.remove_writer(child.stdin_fd)

    def notify_remote(self, type_: str, data: str) -> None:
        """A REMOTE_COMMUNICATION event (supervisor.sendRemoteCommEvent)."""
        self.events.publish("REMOTE_COMMUNICATION", f"type:{type_}\n{data}")

    def _tick(self) -> None:
        """TICK_* events: look at the clock every second, as supervisord's loop does."""
        self.events.tick()
        self._tick_timer = self.loop.call_later(1.0, self._tick)

    # -- children --------------------------------------------------------------------------

    def child_quit(self) -> None:
        """SIGCHLD, as supervisord logs it (at debug), then the reap."""
        self.log.debug("received SIGCHLD indicating a child quit")
        self.reap()

    def reap(self) -> None:
        """Collect every exited child; drain its pipes first so no output is lost."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            process = self.by_pid.pop(pid, None)
            if process is None:
                self.log.info(f"reaped unknown pid {pid}")
                continue
            child = self.children.get(process)
            if child is not None:
                for reader in list(child.readers):
                    reader.read_available()
            process.finish(status)

    async def settled(self) -> None:
        """Until no process is STARTING: what a start (or a restart) set in motion is over."""
        while True:
            starting = [p for g in self.groups.values() for p in g.processes.values()
                        if p.state == ProcessState.STARTING]
            if not starting:
                return
            await self.wait_change(starting[0])

    async def wait_change(self, process: Process, timeout: float | None = None) -> None:
        """Resolve at the next state change of `process` (or after `timeout` seconds)."""
        future: asyncio.Future[None] = self.loop.create_future()
        self._waiters.setdefault(process, []).append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            waiting = self._waiters.get(process, [])
            if future in waiting:
                waiting.remove(future)

    def reopen_logs(self) -> None:
        self.log.info("received SIGUSR2 indicating log reopen request")
        self.log.reopen()
        for child in self.children.values():
            child.stdout.reopen()
            child.stderr.reopen()

    # -- shutdown --------------------------------------------------------------------------

    def request_stop(self, state: SupervisorState) -> None:
        """Begin an orderly shutdown (SHUTDOWN) or restart (RESTARTING)."""
        if self.state <= SupervisorState.RESTARTING:
            if state == SupervisorState.SHUTDOWN:
                self.state = state
            return
        self.state = state
        self.events.publish("SUPERVISOR_STATE_CHANGE_STOPPING", "")
        self._stop_queue = self.ordered_groups()
        self._shutdown_tick()

    def _shutdown_tick(self) -> None:
        """Re-check once a second so `waiting for ...` is reported even when nothing changes."""
        self._continue_shutdown()
        if not self._done.done():
            self._shutdown_timer = self.loop.call_later(1.0, self._shutdown_tick)

    def _continue_shutdown(self) -> None:
        """Stop the highest-priority group still running; finish when none is left."""
        self._shutdown_check_pending = False
        while self._stop_queue:
            group = self._stop_queue[-1]
            group.stop_all()
            if group.unstopped():
                self._report_unstopped()
                return
            self._stop_queue.pop()
        if not self._done.done():
            self._done.set_result(None)

    def _report_unstopped(self) -> None:
        now = self.loop.time()
        if now > self._shutdown_report_at + 3:
            names = ", ".join(p.name for g in self.groups.values() for p in g.unstopped())
            self.log.info(f"waiting for {names} to die")
            self._shutdown_report_at = now

    async def wait_stopped(self) -> None:
        """Until an orderly shutdown or restart has stopped every process."""
        await self._done

    def close(self) -> None:
        """Release everything: pipes, log files. Called once all processes are stopped."""
        for timer in (self._tick_timer, self._shutdown_timer):
            if timer is not None:  # a pending one would hold this generation for a second
                timer.cancel()
        for pool in self.events.pools.values():
            pool.close()
        for child in self.children.values():
            for reader in list(child.readers):
                reader.read_available()
                reader.close()
            for channel in (child.stdout, child.stderr):
                channel.close()
            self._close_stdin(child)


def _syslog_sender(process_name: str) -> Callable[[str], None]:
    """`*_syslog=true`: lines go to the local syslog as `<process> <line>`, like supervisord."""
    import syslog

    return lambda line: syslog.syslog(syslog.LOG_INFO, f"{process_name} {line}")


def clear_auto_logs(childlogdir: str, identifier: str, log: MainLog) -> None:
    """Delete AUTO child logs a previous run left (unless nocleanup), as supervisord does."""
    pattern = re.compile(rf".+?---{re.escape(identifier)}-\S+\.log\.?\d{{0,4}}")
    try:
        names = os.listdir(childlogdir)
    except OSError:
        log.warn("Could not clear childlog dir")
        return
    for name in names:
        if pattern.match(name):
            try:
                os.remove(os.path.join(childlogdir, name))
            except OSError:
                log.warn(f"Failed to clean up {os.path.join(childlogdir, name)!r}")
