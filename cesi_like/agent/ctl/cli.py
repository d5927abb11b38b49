"""`cesi-agentctl`: supervisorctl's commands, flags, output lines and exit codes.

It talks XML-RPC to cesi-agentd or to any supervisord 3.x/4.x. Outputs and exit statuses are
supervisorctl 4.3's (the test suite replays one session through both clients and compares);
help texts are our own. The commands live in processes, logs and groups; disable and enable,
which supervisorctl does not have, in disable.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

from ...inifile import ConfigError
from ..config import CtlConfig, find_config, load_ctl
from .base import GENERIC, INVALID_ARGS, SUCCESS
from .disable import DisableCommands
from .groups import ConfigCommands
from .logs import LogCommands
from .processes import ProcessCommands


class Controller(ProcessCommands, LogCommands, ConfigCommands, DisableCommands):
    """The command interpreter, used both for one-shot commands and the interactive shell."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cesi-agentctl",
        description="Control cesi-agentd or supervisord: run one command, or a shell.",
    )
    parser.add_argument("-c", "--configuration", help="config file ([supervisorctl] section)")
    parser.add_argument("-i", "--interactive", action="store_true",
                        help="start a shell after running the command")
    parser.add_argument("-s", "--serverurl", help="unix:///path/to/socket or http://host:port")
    parser.add_argument("-u", "--username", help="user for basic auth")
    parser.add_argument("-p", "--password", help="password for basic auth")
    parser.add_argument("-r", "--history-file", help="keep the shell's history in this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and its arguments")
    return parser


def options_from(args: argparse.Namespace) -> CtlConfig:
    path = args.configuration or find_config(sys.argv[0], os.getcwd())
    options = load_ctl(path) if path else CtlConfig("http://localhost:9001", None, None,
                                                    "supervisor", None)

    overrides = {key: getattr(args, attr) for key, attr in (
        ("serverurl", "serverurl"), ("username", "username"), ("password", "password"),
        ("history_file", "history_file")) if getattr(args, attr) is not None}
    return dataclasses.replace(options, **overrides)


def shell(controller: Controller) -> None:
    """The interactive loop: readline editing and history, starting with `status`."""
    try:
        import readline

        readline.set_completer_delims(
            readline.get_completer_delims().replace(":", "").replace("*", "").replace("-", ""))
        history = controller.options.history_file
        if history:
            history = os.path.expanduser(history)
            try:
                readline.read_history_file(history)
            except OSError:
                pass
            import atexit

            atexit.register(_save_history, readline, history)
    except ImportError:
        pass
    controller.cmdqueue.append("status")
    try:
        controller.cmdloop()
    except KeyboardInterrupt:
        controller.output("")


def _save_history(readline: Any, path: str) -> None:
    try:
        readline.write_history_file(path)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = options_from(args)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return INVALID_ARGS
    interactive = args.interactive or not args.command
    controller = Controller(options, interactive)
    if args.command:
        controller.onecmd(" ".join(args.command))
        if not args.interactive:
            return controller.exitstatus
    shell(controller)
    return SUCCESS


def run() -> int:
    """The `cesi-agentctl` script: `main`, with a closed pipe (`| head`) or a timeout as
    supervisorctl's plain error status instead of a traceback."""
    try:
        return main()
    except (BrokenPipeError, TimeoutError):
        return GENERIC
