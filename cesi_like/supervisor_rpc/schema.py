"""What a Supervisor node may answer, checked value by value.

A node is untrusted input: every struct it returns is checked against the types and sizes that
supervisord itself produces before anything else in the console sees it. A failed check names
the method, the index and the key, so the node's `error` state says what was wrong.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from .states import ProcessState

MAX_PROCESSES = 10_000  # per node; supervisord on a big host runs a few thousand at most
MAX_TRANSITIONS = 1024  # per change-feed answer; cesi-agentd keeps 512
MAX_NAME = 255
MAX_TEXT = 4096


class BadAnswer(ValueError):
    """The node answered, but not with what Supervisor's interface promises."""


@dataclass(frozen=True)
class ProcessInfo:
    """One entry of `getAllProcessInfo` / `getProcessInfo`, with Supervisor's key names."""

    name: str
    group: str
    description: str
    start: int
    stop: int
    now: int
    state: int
    statename: str
    spawnerr: str
    exitstatus: int
    logfile: str
    stdout_logfile: str
    stderr_logfile: str
    pid: int

    @property
    def full_name(self) -> str:
        """`group:name`, as the process methods take it."""
        return f"{self.group}:{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def running_description(pid: int, start: float, now: float) -> str:
    """A RUNNING process's `description`, as supervisord words it: the agent answers with it,
    and the console renews it between full polls when the agent says nothing changed."""
    seconds = max(0, int(now) - int(start))
    return f"pid {pid}, uptime {datetime.timedelta(seconds=seconds)}"


_INT_KEYS = ("start", "stop", "now", "state", "exitstatus", "pid")
_STR_KEYS = ("description", "statename", "spawnerr", "logfile", "stdout_logfile",
             "stderr_logfile")


def integer(value: Any, where: str) -> int:
    # bool is an int in Python, but an XML-RPC <boolean> is not what Supervisor sends here
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadAnswer(f"{where}: expected an integer, got {type(value).__name__}")
    if not -(2**31) <= value < 2**31:
        raise BadAnswer(f"{where}: {value} is out of range")
    return value


def _string(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise BadAnswer(f"{where}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise BadAnswer(f"{where}: longer than {limit} characters")
    return value


def _name(value: Any, where: str) -> str:
    """A process or group name: what a namespec (`group:name`) can carry."""
    name = _string(value, where, MAX_NAME)
    if not name or ":" in name:
        raise BadAnswer(f"{where}: not a valid name: {name!r}")
    return name


def process_info(value: Any, where: str = "process") -> ProcessInfo:
    """A checked ProcessInfo from one struct; BadAnswer names what is wrong."""
    if not isinstance(value, dict):
        raise BadAnswer(f"{where}: expected a struct, got {type(value).__name__}")
    fields: dict[str, Any] = {key: _name(value.get(key), f"{where}.{key}")
                              for key in ("name", "group")}
    for key in _INT_KEYS:
        fields[key] = integer(value.get(key), f"{where}.{key}")
    for key in _STR_KEYS:
        # older supervisords lack some log keys; a missing one is empty, a wrong one is bad
        fields[key] = _string(value.get(key, ""), f"{where}.{key}", MAX_TEXT)
    try:
        state = ProcessState(fields["state"])
    except ValueError:
        raise BadAnswer(f"{where}.state: unknown state {fields['state']}") from None
    if fields["statename"] != state.name:
        raise BadAnswer(f"{where}.statename: {fields['statename']!r} does not match state "
                        f"{state.value}")
    return ProcessInfo(**fields)


def process_list(value: Any, method: str = "getAllProcessInfo") -> list[ProcessInfo]:
    """The checked answer of getAllProcessInfo."""
    if not isinstance(value, list):
        raise BadAnswer(f"{method}: expected an array, got {type(value).__name__}")
    if len(value) > MAX_PROCESSES:
        raise BadAnswer(f"{method}: more than {MAX_PROCESSES} processes")
    return [process_info(item, f"{method}[{index}]") for index, item in enumerate(value)]


def text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    """A checked short string (a version, an identification)."""
    return _string(value, where, limit)


def state_code(value: Any, where: str = "getState") -> int:
    """getState's struct: `{statecode, statename}`; the code."""
    if not isinstance(value, dict):
        raise BadAnswer(f"{where}: expected a struct, got {type(value).__name__}")
    return integer(value.get("statecode"), f"{where}.statecode")


def action_results(value: Any, where: str) -> list[dict[str, Any]]:
    """startAllProcesses & co.: `[{name, group, status, description}]`."""
    results = []
    for at, item in _structs(value, where, MAX_PROCESSES, "results"):
        results.append({"name": _string(item.get("name"), f"{at}.name", MAX_NAME),
                        "group": _string(item.get("group"), f"{at}.group", MAX_NAME),
                        "status": integer(item.get("status"), f"{at}.status"),
                        "description": _string(item.get("description", ""),
                                               f"{at}.description", MAX_TEXT)})
    return results


def _structs(value: Any, where: str, limit: int, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each struct of an array of at most `limit`, with where it is for error messages."""
    if not isinstance(value, list) or len(value) > limit:
        raise BadAnswer(f"{where}: expected an array of at most {limit} {what}")
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise BadAnswer(f"{at}: expected a struct")
        yield at, item


@dataclass(frozen=True)
class Transition:
    """One process state change from cesi-agentd's change feed, as the agent saw it."""

    time: float  # the node's wall clock
    group: str
    name: str
    from_state: int
    to_state: int
    pid: int
    exitstatus: int
    expected: bool


def transitions(value: Any, where: str) -> list[Transition]:
    """The feed's `transitions`: checked, oldest first."""
    found = []
    for at, item in _structs(value, where, MAX_TRANSITIONS, "changes"):
        states = []
        for key in ("from_state", "to_state"):
            code = integer(item.get(key), f"{at}.{key}")
            if code not in ProcessState._value2member_map_:
                raise BadAnswer(f"{at}.{key}: unknown state {code}")
            states.append(code)
        if not isinstance(item.get("expected"), bool):
            raise BadAnswer(f"{at}.expected: expected a boolean")
        found.append(Transition(
            number(item.get("time"), f"{at}.time"),
            _name(item.get("group"), f"{at}.group"), _name(item.get("name"), f"{at}.name"),
            states[0], states[1],
            integer(item.get("pid"), f"{at}.pid"),
            integer(item.get("exitstatus"), f"{at}.exitstatus"), item["expected"]))
    return found


def number(value: Any, where: str) -> float:
    """A finite, non-negative int or double (XML-RPC has no other numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value < float("inf")):
        raise BadAnswer(f"{where}: expected a number")
    return float(value)


def process_stats(value: Any, where: str) -> dict[str, Any]:
    """`cesi.getProcessStats`: checked and copied, so nothing else from the node gets through."""
    if not isinstance(value, dict) or not isinstance(value.get("processes"), list):
        raise BadAnswer(f"{where}: expected a struct with a processes array")
    if len(value["processes"]) > MAX_PROCESSES:
        raise BadAnswer(f"{where}: more than {MAX_PROCESSES} processes")
    processes = []
    for index, item in enumerate(value["processes"]):
        here = f"{where}.processes[{index}]"
        if not isinstance(item, dict):
            raise BadAnswer(f"{here}: expected a struct")
        processes.append({
            "group": _string(item.get("group"), f"{here}.group", MAX_NAME),
            "name": _string(item.get("name"), f"{here}.name", MAX_NAME),
            "pid": integer(item.get("pid"), f"{here}.pid"),
            "cpu_seconds": number(item.get("cpu_seconds"), f"{here}.cpu_seconds"),
            "rss_kb": integer(item.get("rss_kb"), f"{here}.rss_kb"),
            "processes": integer(item.get("processes"), f"{here}.processes")})
    return {"now": number(value.get("now"), f"{where}.now"), "processes": processes}
