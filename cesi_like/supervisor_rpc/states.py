"""Supervisor's numbered states and fault codes, verbatim: they are the wire contract.

Shared by the agent (which answers with them), cesi-agentctl and the console (which read them).
"""

from __future__ import annotations

from enum import IntEnum


class ProcessState(IntEnum):
    """A child's state; the numbers are what `getProcessInfo` reports as `state`."""

    STOPPED = 0
    STARTING = 10
    RUNNING = 20
    BACKOFF = 30
    STOPPING = 40
    EXITED = 100
    FATAL = 200
    UNKNOWN = 1000


STOPPED_STATES = frozenset(
    {ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL, ProcessState.UNKNOWN}
)
RUNNING_STATES = frozenset({ProcessState.RUNNING, ProcessState.BACKOFF, ProcessState.STARTING})
SIGNALLABLE_STATES = frozenset(
    {ProcessState.RUNNING, ProcessState.STARTING, ProcessState.STOPPING}
)


class SupervisorState(IntEnum):
    """The daemon's own state (`getState`); lower than RUNNING means it is going away."""

    FATAL = 2
    RUNNING = 1
    RESTARTING = 0
    SHUTDOWN = -1


class Fault(IntEnum):
    """XML-RPC fault codes of Supervisor's `supervisor.*` and `system.*` namespaces."""

    UNKNOWN_METHOD = 1
    INCORRECT_PARAMETERS = 2
    BAD_ARGUMENTS = 3
    SIGNATURE_UNSUPPORTED = 4
    SHUTDOWN_STATE = 6
    BAD_NAME = 10
    BAD_SIGNAL = 11
    NO_FILE = 20
    NOT_EXECUTABLE = 21
    FAILED = 30
    ABNORMAL_TERMINATION = 40
    SPAWN_ERROR = 50
    ALREADY_STARTED = 60
    NOT_RUNNING = 70
    SUCCESS = 80
    ALREADY_ADDED = 90
    STILL_RUNNING = 91
    CANT_REREAD = 92
