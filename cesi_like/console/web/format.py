"""Small formatting helpers the templates call (registered as Jinja globals)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from ...supervisor_rpc.states import ProcessState
from ..storage.models import utcnow


def ago(when: datetime.datetime | None) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `2d ago`, or `never`."""
    if when is None:
        return "never"
    seconds = max(0, int((utcnow() - when).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def when(moment: datetime.datetime | None) -> Markup:
    """A stored UTC time as people read it, `5m ago`, with the exact time on hover (and in
    `datetime` for machines)."""
    if moment is None:
        return Markup("never")
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(timespec="seconds") + "Z", exact, ago(moment))


def epoch_when(seconds: int) -> Markup:
    """`when` for a Supervisor timestamp (seconds since the epoch, 0 for never)."""
    if not seconds:
        return Markup("-")
    return when(datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None))


def statename(code: int) -> str:
    try:
        return ProcessState(code).name
    except ValueError:
        return str(code)


def disabled(process: Mapping[str, Any]) -> bool:
    """A cesi-agentd process disabled for good: the agent describes it so while it is not
    running (a supervisord never does)."""
    return process.get("description") == "Disabled" and process.get("statename") not in (
        "RUNNING", "STARTING", "BACKOFF", "STOPPING")
