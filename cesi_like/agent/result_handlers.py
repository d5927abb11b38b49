"""An event listener's `result_handler`: who judges what a listener answered.

supervisord imports `result_handler = module:callable` from its config and calls it with the
event and the listener's RESULT body; the call returning means the event was processed, raising
supervisor's `RejectEvent` means rejected (the event is offered again), raising anything else
means an error (the listener is UNKNOWN). Plugins such as supervisor-stdlog rely on it: their
handler is where the relayed output is written, in the daemon's own process.

The agent does the same. The default handler is built in, so a config without plugins never
imports supervisor; a plugin's handler is imported when the config is read, so a handler that
cannot be imported (a Python 2 module, a typo) stops the config there, naming file, line and key.
"""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Callable
from typing import Any

DEFAULT = "supervisor.dispatchers:default_handler"

ResultHandler = Callable[[Any, bytes], None]


class RejectEvent(Exception):
    """Raised by a handler that rejects the event (supervisor.dispatchers.RejectEvent, for
    handlers written without supervisor at hand)."""


class Verdict(enum.Enum):
    PROCESSED = "processed"
    REJECTED = "rejected"
    ERROR = "error"


def default_handler(event: object, response: bytes) -> None:
    """supervisord's rule: `OK` is processed, anything else is rejected."""
    if response != b"OK":
        raise RejectEvent(response)


def load(spec: str) -> ResultHandler:
    """The callable `spec` (`module:attribute[.attribute]`) names; raises what importing it
    raises (ImportError, AttributeError, SyntaxError...)."""
    if spec == DEFAULT:
        return default_handler
    module_name, colon, attributes = spec.partition(":")
    if not colon or not module_name.strip() or not attributes.strip():
        raise ValueError(f"{spec!r} is not module:callable")
    handler: object = importlib.import_module(module_name.strip())
    for attribute in attributes.strip().split("."):
        handler = getattr(handler, attribute)
    if not callable(handler):
        raise TypeError(f"{spec} is not callable")
    return handler


def judge(handler: ResultHandler, event: object, response: bytes) -> tuple[Verdict, str]:
    """Call the handler as supervisord does; the verdict, and for an error what it raised."""
    try:
        handler(event, response)
    except Exception as exc:  # a plugin's handler can raise anything: it must not stop us
        if _is_rejection(exc):
            return Verdict.REJECTED, ""
        return Verdict.ERROR, f"{type(exc).__name__}: {exc}"
    finally:
        if handler is not default_handler:
            _flush_output()
    return Verdict.PROCESSED, ""


def _flush_output() -> None:
    """Relays (supervisor-stdlog) write to the agent's stdout and stderr without flushing:
    flush after each result, so what they relay reaches a pipe or `docker logs` now, not
    when a block-sized buffer fills."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, detached or None
            pass


def _is_rejection(exc: Exception) -> bool:
    # plugins raise supervisor's own class, which the agent does not import for them
    kind = type(exc)
    return isinstance(exc, RejectEvent) or (
        kind.__name__ == "RejectEvent" and kind.__module__ == "supervisor.dispatchers")
