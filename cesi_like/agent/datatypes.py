"""Converters for supervisord.conf values.

Each takes the raw string and returns a typed value, or raises ValueError with a sentence the
config loader prefixes with file, line, section and key.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import signal
from enum import Enum

from .loglevel import LogLevel

TRUTHY = frozenset({"yes", "true", "on", "1"})
FALSY = frozenset({"no", "false", "off", "0"})


def boolean(value: str) -> bool:
    """yes/true/on/1 or no/false/off/0, any case."""
    lowered = value.strip().lower()
    if lowered in TRUTHY:
        return True
    if lowered in FALSY:
        return False
    raise ValueError(f"not a valid boolean value: {value!r}")


def integer(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


_SIZE_SUFFIXES = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}


def byte_size(value: str) -> int:
    """`50MB`, `1KB`, `1024`: suffixes in powers of 1024, as supervisord reads them."""
    lowered = value.strip().lower()
    multiplier = 1
    if lowered[-2:] in _SIZE_SUFFIXES:
        multiplier = _SIZE_SUFFIXES[lowered[-2:]]
        lowered = lowered[:-2]
    try:
        return int(lowered) * multiplier
    except ValueError:
        raise ValueError(f"not a valid byte size: {value!r}") from None


def octal(value: str) -> int:
    try:
        return int(value.strip(), 8)
    except ValueError:
        raise ValueError(f"{value} can not be converted to an octal type") from None


_SIGNALS = {s.name: int(s) for s in signal.Signals}
_SIGNAL_NUMBERS = frozenset(_SIGNALS.values())


def signal_number(value: str) -> int:
    """A signal by name (`TERM`, `SIGTERM`, any case) or number."""
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        name = text.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        if name not in _SIGNALS:
            raise ValueError(f"value {value!r} is not a valid signal name") from None
        return _SIGNALS[name]
    if number not in _SIGNAL_NUMBERS:
        raise ValueError(f"value {value!r} is not a valid signal number")
    return number


def signal_name(number: int) -> str:
    """`SIGTERM` for 15; `signal 99` for numbers the platform has no name for."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class AutoRestart(Enum):
    """The three values of `autorestart`."""

    NEVER = "false"
    UNEXPECTED = "unexpected"
    ALWAYS = "true"


def auto_restart(value: str) -> AutoRestart:
    lowered = value.strip().lower()
    if lowered in TRUTHY:
        return AutoRestart.ALWAYS
    if lowered in FALSY:
        return AutoRestart.NEVER
    if lowered == "unexpected":
        return AutoRestart.UNEXPECTED
    raise ValueError(f"invalid 'autorestart' value {value!r}")


def exit_codes(value: str) -> tuple[int, ...]:
    """`0,2`: each between 0 and 255."""
    if not value.strip():
        return ()
    try:
        codes = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"not a valid list of exit codes: {value!r}") from None
    for code in codes:
        if not 0 <= code <= 255:
            raise ValueError(f"not a valid list of exit codes: {value!r}")
    return codes


def list_of_strings(value: str) -> tuple[str, ...]:
    if not value.strip():
        return ()
    return tuple(part.strip() for part in value.split(","))


def key_value_pairs(value: str) -> dict[str, str]:
    """`A="1",B='x,y',C=3` into a dict: shell-style quoting lets values hold commas."""
    lexer = shlex.shlex(value)
    lexer.wordchars += "/.+-():"
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise ValueError(f"cannot parse key/value pairs {value!r}: {exc}") from None
    pairs: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        key_eq_value = tokens[index : index + 3]
        if len(key_eq_value) != 3 or key_eq_value[1] != "=":
            raise ValueError(f"Unexpected end of key/value pairs in value '{value}'")
        pairs[key_eq_value[0]] = key_eq_value[2].strip("'\"")
        index += 3
        if index < len(tokens):
            if tokens[index] != ",":
                raise ValueError(f"expected ',' between key/value pairs in value '{value}'")
            index += 1
    return pairs


_NAME_FORBIDDEN = re.compile(r"[ :/]")


def process_or_group_name(value: str) -> str:
    """Names end up in URLs and the event protocol, so space, ':' and '/' are refused."""
    name = value.strip()
    bad = _NAME_FORBIDDEN.search(name)
    if bad:
        raise ValueError(f"Invalid name: {value!r} because of character: {bad.group()!r}")
    if not name:
        raise ValueError("name is empty")
    return name


def log_level(value: str) -> LogLevel:
    aliases = {
        "critical": LogLevel.CRITICAL,
        "error": LogLevel.ERROR,
        "warn": LogLevel.WARN,
        "info": LogLevel.INFO,
        "debug": LogLevel.DEBUG,
        "trace": LogLevel.TRACE,
        "blather": LogLevel.BLATHER,
    }
    try:
        return aliases[value.strip().lower()]
    except KeyError:
        raise ValueError(f"bad logging level name {value!r}") from None


def user_to_uid(value: str) -> tuple[int, int]:
    """A user name or uid into (uid, gid of that user's primary group)."""
    text = value.strip()
    try:
        entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except KeyError:
        raise ValueError(f"Invalid user name {value}") from None
    return entry.pw_uid, entry.pw_gid


def existing_directory(value: str) -> str:
    path = os.path.expanduser(value)
    if not os.path.isdir(path):
        raise ValueError(f"{value} is not an existing directory")
    return path


def path_in_existing_directory(value: str) -> str:
    """A file path whose directory exists (the file itself may not yet)."""
    path = os.path.expanduser(value)
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        raise ValueError(f"The directory named as part of the path {value} does not exist")
    return path


def inet_address(value: str) -> tuple[str, int]:
    """`host:port`, `*:port`, `:port` or a bare port; an empty host means every interface."""
    host, sep, port_text = value.strip().rpartition(":")
    if sep and not port_text:
        raise ValueError(f"no port number specified in {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"not a valid port number: {value!r}") from None
    if not 0 <= port < 65536:  # 0: any free port (tests, ephemeral agents)
        raise ValueError(f"not a valid port number: {value!r}")
    host = host.lower()
    if host == "*":
        host = ""
    return host, port
