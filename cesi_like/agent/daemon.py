"""One running agent: a Supervisor generation plus its HTTP servers and signal handling.

A restart (SIGHUP or `supervisor.restart`) ends the generation after an orderly stop and begins a
new one from a freshly read config. If that config is broken, the old one is kept and the error
logged: a typo must not take every program on the host down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..inifile import ConfigError
from ..supervisor_rpc.states import SupervisorState
from .config import Config
from .listen import Listeners, bind_servers
from .logs import MainLog
from .supervisor import Supervisor

if TYPE_CHECKING:
    from .http import HttpServer


class Agent:
    """Runs generations of Supervisor until a shutdown."""

    def __init__(
        self,
        config: Config,
        log: MainLog,
        reread: Callable[[], Config],
        listeners: Listeners,
    ) -> None:
        self.config = config
        self.log = log
        self.reread = reread
        self.listeners = listeners
        self.supervisor: Supervisor | None = None

    def _on_signal(self, supervisor: Supervisor, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self.log.warn(f"received {name} indicating exit request")
            supervisor.request_stop(SupervisorState.SHUTDOWN)
        elif signum == signal.SIGHUP:
            if supervisor.state == SupervisorState.SHUTDOWN:
                self.log.warn(f"ignored {name} indicating restart request (shutdown in progress)")
            else:
                self.log.warn(f"received {name} indicating restart request")
                supervisor.request_stop(SupervisorState.RESTARTING)
        elif signum == signal.SIGUSR2:
            supervisor.reopen_logs()

    async def run(self) -> None:
        """Serve until shut down; each loop iteration is one generation."""
        loop = asyncio.get_running_loop()
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR2)
        while True:
            supervisor = Supervisor(self.config, self.log, loop)
            self.supervisor = supervisor
            loop.add_signal_handler(signal.SIGCHLD, supervisor.reap)
            for signum in handled:
                loop.add_signal_handler(signum, self._on_signal, supervisor, signum)
            # Programs first: their startsecs clock starts at spawn, while the HTTP side
            # (imported only now) is ready long before anyone can see a RUNNING state.
            supervisor.start()
            servers = await self._start_servers(supervisor)
            supervisor.reap()  # children that died before the handler was installed
            await supervisor.wait_stopped()
            for server in servers:
                await server.close()
            supervisor.close()
            if supervisor.state == SupervisorState.SHUTDOWN:
                for signum in (*handled, signal.SIGCHLD):
                    loop.remove_signal_handler(signum)
                self._close_listeners()
                return
            self._restart_config()

    async def _start_servers(self, supervisor: Supervisor) -> list[HttpServer]:
        # imported here, after the programs are spawned: see run()
        from .http import HttpServer
        from .rpc import SupervisorNamespace
        from .rpc_cesi import CesiNamespace
        from .web import Routes
        from .xmlrpc import Dispatcher

        dispatcher = Dispatcher(self.log)
        processes = SupervisorNamespace(supervisor, self.reread)
        dispatcher.register("supervisor", processes)
        dispatcher.register("cesi", CesiNamespace(supervisor, processes), listed=False)
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
