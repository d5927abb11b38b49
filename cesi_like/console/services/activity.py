"""Who did what: the activity log, in the database and optionally appended to a file."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..storage.models import ActivityLog, User, utcnow

log = logging.getLogger("cesi_like.activity")


class Result(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"  # tried, and the node or the rules said no
    DENIED = "denied"  # not allowed to try


@dataclass(frozen=True)
class Actor:
    """The user behind a service call, where they came from, and where activity is logged."""

    user: User | None
    ip: str = ""
    activity_file: str | None = None

    @property
    def username(self) -> str:
        return self.user.username if self.user is not None else "-"


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
