"""The daemon: becoming its user, lifting its limits, going into the background, and then one
running agent: a Supervisor generation plus its HTTP servers and signal handling.

A restart (SIGHUP or `supervisor.restart`) ends the generation after an orderly stop and begins a
new one from a freshly read config. If that config is broken, the old one is kept and the error
logged: a typo must not take every program on the host down.

SIGHUPs that arrive during a restart (from the signal until the new generation's programs
have started) give one more restart, not one each: it follows once they have been quiet for
`HUP_QUIET` seconds, so a storm of them (a config tool that sends one per file it changed)
restarts the programs twice, as supervisord coalesces them, not once per signal.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..inifile import ConfigError
from ..supervisor_rpc.states import SupervisorState
from . import datatypes as dt
from .config import Config
from .disabled import DisabledStore, StateFileError
from .logs import MainLog
from .supervisor import Supervisor
from .web.listen import Listeners, bind_servers

if TYPE_CHECKING:
    from .web.server import HttpServer


def raise_limits(minfds: int, minprocs: int, processes: int) -> str | None:
    """Lift the fd and process limits to what the config needs; an error message if we can't."""
    wanted_fds = max(minfds, 8 * processes + 64)
    for name, limit, wanted, needed in (
        ("file descriptors", resource.RLIMIT_NOFILE, wanted_fds, minfds),
        ("processes", resource.RLIMIT_NPROC, minprocs, minprocs),
    ):
        soft, hard = resource.getrlimit(limit)
        if soft == resource.RLIM_INFINITY or soft >= wanted:
            continue
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(limit, (target, hard))
        except (ValueError, OSError):
            target = soft
        if target < needed:
            return (
                f"The minimum number of {name} required to run this process is {needed} as per "
                f"the config file setting. The current environment will only allow {target}. "
                "Raise the limit in your environment or lower the setting in the config file."
            )
    return None


def drop_privileges(user: str | None) -> str | None:
    """Become `user` when running as root; the reason as text when that is impossible."""
    if user is None:
        return None
    try:
        uid, gid = dt.user_to_uid(user)
    except ValueError as exc:
        return str(exc)
    if os.getuid() == uid:
        return None
    if os.getuid() != 0:
        return "Can't drop privilege as nonroot user"
    import pwd

    os.initgroups(pwd.getpwuid(uid).pw_name, gid)
    os.setgid(gid)
    os.setuid(uid)
    return None


def daemonize(directory: str | None, umask: int) -> None:
    """Fork into the background: the parent exits, the child leads a new session with the
    config's umask (supervisord sets it only here: in the foreground the shell's applies)."""
    if os.fork():
        os._exit(0)
    os.umask(umask)
    if directory:
        os.chdir(directory)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.setsid()


HUP_QUIET = 1.0  # seconds without a SIGHUP before the restart the others asked for


class Agent:
    """Runs generations of Supervisor until a shutdown."""

    def __init__(
        self,
        config: Config,
        log: MainLog,
        reread: Callable[[], Config],
        listeners: Listeners,
        disabled: DisabledStore | None = None,
    ) -> None:
        self.config = config
        # the disabled programs outlive every generation (and the agent: see disabled.py)
        self.disabled = disabled if disabled is not None else DisabledStore(
            config.server.statefile)
        self.log = log
        self.reread = reread
        self.listeners = listeners
        self.supervisor: Supervisor | None = None
        self._restarting = False  # from a restart's signal until its programs have started
        self._hup_again = False  # a SIGHUP came during it: one more restart after it
        self._last_hup = 0.0
        self._between: list[int] = []  # signals that came between two generations

    HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR2)

    def _child_quit(self) -> None:
        if self.supervisor is not None:
            self.supervisor.child_quit()

    def _on_signal(self, signum: int) -> None:
        supervisor = self.supervisor
        if supervisor is None:  # the next generation takes it when it has started
            self._between.append(signum)
            return
        name = signal.Signals(signum).name
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self.log.warn(f"received {name} indicating exit request")
            supervisor.request_stop(SupervisorState.SHUTDOWN)
        elif signum == signal.SIGHUP:
            if supervisor.state == SupervisorState.SHUTDOWN:
                self.log.warn(f"ignored {name} indicating restart request (shutdown in progress)")
            elif self._restarting or supervisor.state == SupervisorState.RESTARTING:
                if not self._hup_again:
                    self.log.warn(f"received {name} during a restart: one more restart will "
                                  "follow it")
                self._hup_again = True
                self._last_hup = asyncio.get_running_loop().time()
            else:
                self.log.warn(f"received {name} indicating restart request")
                self._restarting = True
                supervisor.request_stop(SupervisorState.RESTARTING)
        elif signum == signal.SIGUSR2:
            supervisor.reopen_logs()

    async def run(self) -> None:
        """Serve until shut down, one generation after another."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGCHLD, self._child_quit)
        for signum in self.HANDLED:
            loop.add_signal_handler(signum, self._on_signal, signum)
        while await self._generation() != SupervisorState.SHUTDOWN:
            # the generation is over and unreferenced: free all of it (its processes,
            # channels and servers hold each other) before the next is read and built, so
            # the next reuses its memory instead of fragmenting a new megabyte each restart
            gc.collect()
            self._restart_config()
        for signum in (*self.HANDLED, signal.SIGCHLD):
            loop.remove_signal_handler(signum)
        self._close_listeners()

    async def _generation(self) -> SupervisorState:
        """Run one Supervisor and its servers until it stops; how it stopped."""
        loop = asyncio.get_running_loop()
        supervisor = Supervisor(self.config, self.log, loop, self.disabled)
        self.supervisor = supervisor
        # Programs first: their startsecs clock starts at spawn, while the HTTP side
        # (imported only now) is ready long before anyone can see a RUNNING state.
        supervisor.start()
        servers = await self._start_servers(supervisor)
        supervisor.reap()  # children that died before the handler was installed
        for signum in self._between:
            self._on_signal(signum)
        self._between.clear()
        settling = loop.create_task(self._restart_settled(supervisor))
        await supervisor.wait_stopped()
        settling.cancel()
        for server in servers:
            await server.close()
        supervisor.close()
        self.supervisor = None
        return supervisor.state

    async def _restart_settled(self, supervisor: Supervisor) -> None:
        """A generation's programs have started: a restart is over, unless SIGHUPs came
        during it, which give one more once they have been quiet for HUP_QUIET."""
        await supervisor.settled()
        loop = asyncio.get_running_loop()
        while self._hup_again:
            quiet = loop.time() - self._last_hup
            if quiet < HUP_QUIET:
                await asyncio.sleep(HUP_QUIET - quiet)
                continue
            self._hup_again = False
            self.log.warn("restarting for the SIGHUPs received during the last restart")
            supervisor.request_stop(SupervisorState.RESTARTING)
            return  # the next generation is still part of a restart
        self._restarting = False

    async def _start_servers(self, supervisor: Supervisor) -> list[HttpServer]:
        # imported here, after the programs are spawned: see run()
        from .rpc.cesi import CesiNamespace
        from .rpc.disable import DisableMethods
        from .rpc.dispatch import Dispatcher
        from .rpc.namespace import SupervisorNamespace
        from .web.routes import Routes
        from .web.server import HttpServer

        dispatcher = Dispatcher(self.log)
        processes = SupervisorNamespace(supervisor, self.reread)
        dispatcher.register("supervisor", processes)
        dispatcher.register("cesi", CesiNamespace(supervisor, processes), listed=False)
        dispatcher.register("cesi", DisableMethods(supervisor, self.reread), listed=False)
        self.log.info("RPC interface 'supervisor' initialized")
        routes = Routes(supervisor, dispatcher)
        servers = []
        for name, sock, creds in self.listeners:
            if creds is None:
                self.log.critical(
                    f"Server '{name}' running without any HTTP authentication checking"
                )
            server = HttpServer(routes, creds, name, self.log)
            await server.start(sock.dup())  # closing a generation keeps the socket
            servers.append(server)
            if sock.family != socket.AF_UNIX:  # tells the real port when port 0 was asked
                host, port = sock.getsockname()[:2]
                self.log.info(f"{name} listening on {host}:{port}")
        return servers

    def _restart_config(self) -> None:
        """Reread the config for the next generation; keep the old one if the new is broken."""
        try:
            new = self.reread()
        except ConfigError as exc:
            self.log.critical(f"could not reread config, keeping the previous one: {exc}")
            new = self.config
        if (new.unix_http, new.inet_http) != (self.config.unix_http, self.config.inet_http):
            try:
                listeners = bind_servers_after_close(self.listeners, new)
            except OSError as exc:
                self.log.critical(f"could not bind the new HTTP servers, keeping the old: {exc}")
                new = self.config
            else:
                self.listeners = listeners
        if new.server.statefile != self.disabled.path:
            try:
                self.disabled = DisabledStore.load(new.server.statefile)
            except StateFileError as exc:
                self.log.critical(f"keeping the disabled programs of {self.disabled.path}: "
                                  f"{exc}")
        self.config = new

    def _close_listeners(self) -> None:
        for name, sock, _ in self.listeners:
            if name == "unix_http_server":
                path = sock.getsockname()
                sock.close()
                if isinstance(path, str) and os.path.exists(path):
                    os.unlink(path)
            else:
                sock.close()


def bind_servers_after_close(old: Listeners, config: Config) -> Listeners:
    """Close the old listeners, then bind the ones `config` asks for."""
    for _, sock, _ in old:
        sock.close()
    return bind_servers(config)
