"""Who did what: the activity log, in the database and optionally appended to a file, and
the admin's search through it."""

from __future__ import annotations

import datetime
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ..storage.models import ActivityLog, User, utcnow

log = logging.getLogger("cesi_like.activity")


# every kind of entry the console records (a signal's name may follow `process.signal`):
# /metrics counts by these, so its labels stay bounded whatever a request's path was
ACTIONS = frozenset({
    "activity.clear", "alert.create", "alert.delete", "alert.disable", "alert.email",
    "alert.enable", "alert.list", "alert.notify", "alert.silenced", "alert.test",
    "alert.update", "alert.webhook", "node.maintenance", "problem.ack", "silence.create",
    "silence.end", "silence.list",
    "bulk-action.cancel", "bulk-action.interrupted", "bulk-action.start", "config.reread",
    "config.update", "denied", "environment.create", "environment.delete",
    "environment.update", "job.cancel", "login", "login.failed", "login.refused", "logout",
    "node.create", "node.delete", "node.main-log", "node.reseal", "node.rotate-key",
    "node.test", "node.update", "password.change", "process.clear-logs", "process.disable",
    "process.enable", "process.restart", "process.signal", "process.start", "process.stop",
    "process.update",
    "rolling-restart.cancel", "rolling-restart.cancelled", "rolling-restart.failed",
    "rolling-restart.interrupted", "rolling-restart.start", "rolling-restart.succeeded",
    "token.create", "token.revoke", "user.create", "user.delete", "user.list", "user.update",
})


class Result(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"  # tried, and the node or the rules said no
    DENIED = "denied"  # not allowed to try


@dataclass(frozen=True)
class Actor:
    """The user behind a service call, where they came from, and where activity is logged.
    `local`: the command line on the console host, which holds every right (see access)."""

    user: User | None
    ip: str = ""
    activity_file: str | None = None
    local: bool = False

    @property
    def username(self) -> str:
        if self.user is not None:
            return self.user.username
        return "(cli)" if self.local else "-"


def record(db: Session, actor: Actor, action: str, target: str = "",
           result: Result | str = Result.OK, detail: str = "",
           username: str | None = None) -> ActivityLog:
    """Add one entry (committed with the caller's transaction) and append it to the file."""
    entry = ActivityLog(time=utcnow(), username=username or actor.username, action=action,
                        target=target[:256], result=str(result), detail=detail[:4000],
                        ip=actor.ip)
    db.add(entry)
    if actor.activity_file:
        line = (f"{entry.time.isoformat(timespec='seconds')}Z {entry.username} {entry.ip} "
                f"{action} {target!r} {result} {detail!r}\n")
        try:
            with open(actor.activity_file, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as exc:
            log.error("cannot append to activity log %s: %s", actor.activity_file, exc)
    return entry


def newest(db: Session, limit: int) -> list[ActivityLog]:
    return list(db.scalars(select(ActivityLog).order_by(ActivityLog.time.desc(),
                                                        ActivityLog.id.desc()).limit(limit)))


FILTERS = ("user", "action", "target", "since", "until")


@dataclass
class Page:
    """One page of a search: its entries, where it is, and the filters it ignored."""

    entries: list[ActivityLog]
    page: int
    pages: int
    total: int
    ignored: list[str] = field(default_factory=list)


def search(db: Session, filters: Mapping[str, str], page: int, size: int) -> Page:
    """Entries by user, action prefix, target substring and a time range (UTC, ISO dates),
    newest first; a time that is not a date is ignored and said so."""
    query = select(ActivityLog)
    if filters.get("user"):
        query = query.where(ActivityLog.username == filters["user"])
    if filters.get("action"):
        query = query.where(ActivityLog.action.startswith(filters["action"]))
    if filters.get("target"):
        query = query.where(ActivityLog.target.contains(filters["target"]))
    ignored = []
    for key, compare in (("since", ActivityLog.time.__ge__), ("until", ActivityLog.time.__le__)):
        if filters.get(key):
            try:
                query = query.where(compare(datetime.datetime.fromisoformat(filters[key])))
            except ValueError:
                ignored.append(key)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, (total + size - 1) // size)
    page = min(max(1, page), pages)
    entries = list(db.scalars(query.order_by(ActivityLog.time.desc(), ActivityLog.id.desc())
                              .offset((page - 1) * size).limit(size)))
    return Page(entries, page, pages, total, ignored)


def clear(db: Session, actor: Actor) -> int:
    """Delete every entry (admin), leaving one that says so; how many went. Not committed."""
    from . import access

    access.require(db, actor, access.Permission.ACTIVITY, "activity.clear")
    removed = int(cast(CursorResult[Any], db.execute(delete(ActivityLog))).rowcount)
    record(db, actor, "activity.clear", detail=f"{removed} entries removed")
    return removed
