"""`cesi-agentd`: supervisord's command line, config search, daemonizing, pidfile and limits."""

import sys

# The agent never speaks TLS, and neither does supervisord. Without this line asyncio and
# http.client load OpenSSL when imported: ~5 MB more resident memory on every managed host.
# Nor does it need OpenSSL's hashes: without `_hashlib`, hashlib uses CPython's built-in
# SHA-1 (`{SHA}` passwords) and hmac the same constant-time compare, and libcrypto (3.5 MB
# resident) is never loaded. Both must run before anything imports asyncio or hmac, hence
# before the imports below.
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

from .. import __version__  # noqa: E402
from ..inifile import ConfigError  # noqa: E402
from . import datatypes as dt  # noqa: E402
from .config import Config, find_config, load, search_paths  # noqa: E402
from .daemon import Agent, daemonize, drop_privileges, raise_limits  # noqa: E402
from .disabled import DisabledStore, StateFileError  # noqa: E402
from .logs import MainLog, RotatingFile  # noqa: E402
from .memory import give_back_freed_memory  # noqa: E402
from .supervisor import clear_auto_logs  # noqa: E402
from .web.listen import bind_servers  # noqa: E402

EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cesi-agentd",
        description="Run the programs of a supervisord.conf and serve Supervisor's XML-RPC API.",
        add_help=False,
    )
    add = parser.add_argument
    # supervisord takes -?, -h and --help alike
    add("-h", "-?", "--help", action="help", help="show this help and exit")
    add("-c", "--configuration", metavar="FILE", help="configuration file path")
    add("-n", "--nodaemon", action="store_true", default=None, help="run in the foreground")
    add("-s", "--silent", action="store_true", default=None, help="no logs to stdout (with -n)")
    add("-u", "--user", help="run as this user (or numeric uid)")
    add("-m", "--umask", help="umask for the daemon (octal, e.g. 022)")
    add("-d", "--directory", help="directory to chdir to when daemonized")
    add("-l", "--logfile", help="main log file path")
    add("-y", "--logfile_maxbytes", metavar="BYTES", help="main log rotation size")
    add("-z", "--logfile_backups", metavar="NUM", help="number of main log backups")
    add("-e", "--loglevel", help="critical, error, warn, info, debug, trace or blather")
    add("-j", "--pidfile", help="pid file path")
    add("-i", "--identifier", help="identifier reported over RPC")
    add("-q", "--childlogdir", help="directory for AUTO child logs")
    add("-k", "--nocleanup", action="store_true", default=None,
        help="keep AUTO child logs of previous runs")
    add("-a", "--minfds", metavar="NUM", help="file descriptors required to start")
    add("-t", "--strip_ansi", action="store_true", default=None,
        help="strip ANSI escapes from child logs")
    add("--minprocs", metavar="NUM", help="processes required to start")
    add("--profile_options", help=argparse.SUPPRESS)
    add("-v", "--version", action="store_true", help="print the version and exit")
    add("--sample-config", action="store_true", help="print a commented sample config")
    return parser


_OVERRIDES: dict[str, Callable[[str], Any]] = {
    "user": str,
    "umask": dt.octal,
    "directory": dt.existing_directory,
    "logfile": dt.path_in_existing_directory,
    "logfile_maxbytes": dt.byte_size,
    "logfile_backups": dt.integer,
    "loglevel": dt.log_level,
    "pidfile": dt.path_in_existing_directory,
    "identifier": str,
    "childlogdir": dt.existing_directory,
    "minfds": dt.integer,
    "minprocs": dt.integer,
}


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """Command-line flags win over `[supervisord]` values, as in supervisord."""
    changes: dict[str, Any] = {}
    for key, convert in _OVERRIDES.items():
        value = getattr(args, key)
        if value is not None:
            try:
                changes[key] = convert(value)
            except ValueError as exc:
                raise ConfigError(str(exc), key=f"--{key}") from None
    for flag in ("nodaemon", "silent", "nocleanup", "strip_ansi"):
        if getattr(args, flag):
            changes[flag] = True
    return dataclasses.replace(config, server=dataclasses.replace(config.server, **changes))


def sample_config() -> str:
    from importlib import resources

    return resources.files("cesi_like.agent").joinpath("sample.conf").read_text("utf-8")


def make_log(config: Config) -> MainLog:
    server = config.server
    file = None
    if server.logfile is not None:
        file = RotatingFile(server.logfile, server.logfile_maxbytes, server.logfile_backups)
    echo = sys.stdout if server.nodaemon and not server.silent else None
    return MainLog(server.loglevel, file, echo)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    if args.sample_config:
        sys.stdout.write(sample_config())
        return 0
    path = args.configuration or find_config(sys.argv[0], os.getcwd())
    if path is None:
        print("Error: No config file found at default paths ("
              + ", ".join(search_paths(sys.argv[0], os.getcwd()))
              + "); use the -c option to specify a config file at a different path",
              file=sys.stderr)
        return EXIT_BAD_CONFIG

    def reread() -> Config:
        return apply_overrides(load(path), args)

    try:
        config = reread()
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        print("For help, use cesi-agentd -h", file=sys.stderr)
        return EXIT_BAD_CONFIG
    server = config.server
    try:
        disabled = DisabledStore.load(server.statefile)
    except StateFileError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    problem = drop_privileges(server.user) or raise_limits(
        server.minfds, server.minprocs, sum(len(g.processes) for g in config.groups)
    )
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        log = make_log(config)
    except OSError as exc:
        print(f"Error: cannot open log file {server.logfile}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if os.getuid() == 0 and server.user is None:
        log.critical("Supervisor is running as root.  Privileges were not dropped because no "
                     "user is specified in the config file.  If you intend to run as root, you "
                     "can set user=root in the config file to avoid this message.")
    for included in config.included:
        log.info(f'Included extra file "{included}" during parsing')
    for warning in config.warnings:
        log.warn(warning)
    if not server.nocleanup:
        clear_auto_logs(server.childlogdir, server.identifier, log)
    try:
        listeners = bind_servers(config)
    except OSError as exc:
        print(f"Error: cannot open an HTTP server: {exc}", file=sys.stderr)
        return 1
    if not server.nodaemon:  # the umask too, as supervisord: in the foreground, the shell's
        daemonize(server.directory, server.umask)
    try:
        with open(server.pidfile, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError as exc:
        log.critical(f"could not write pidfile {server.pidfile}: {exc.strerror}")
    log.info(f"cesi-agentd started with pid {os.getpid()}")
    give_back_freed_memory()
    try:
        asyncio.run(Agent(config, log, reread, listeners, disabled).run())
    finally:
        try:
            os.unlink(server.pidfile)
        except OSError:
            pass
        log.info("exited")
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
