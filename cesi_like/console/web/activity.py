"""The activity log: every login, change and action, in the database and optionally a file;
plus the admin page that lists (and clears) it."""

from __future__ import annotations

import datetime

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ..security import require_role
from ..services import activity as services_activity
from ..services.activity import Actor
from ..storage import db as database
from ..storage.models import ActivityLog, Role

bp = Blueprint("activity", __name__, url_prefix="/activity")

PAGE_SIZE = 50


def client_ip() -> str:
    return request.remote_addr or ""


def actor() -> Actor:
    """The current request's user, address and activity file, for the services."""
    user = current_user._get_current_object() if current_user.is_authenticated else None
    return Actor(user, client_ip() if request else "", current_app.config.get("CESI_ACTIVITY_LOG"))


def record(
    db: Session,
    action: str,
    target: str = "",
    result: str = "ok",
    detail: str = "",
    username: str | None = None,
) -> ActivityLog:
    """Add one entry for the current request (committed with the caller's transaction)."""
    return services_activity.record(db, actor(), action, target, result, detail, username)


@bp.get("/")
@require_role(Role.ADMIN)
def index() -> str:
    db = database.session()
    query = select(ActivityLog)
    filters = {key: request.args.get(key, "").strip() for key in
               ("user", "action", "target", "since", "until")}
    if filters["user"]:
        query = query.where(ActivityLog.username == filters["user"])
    if filters["action"]:
        query = query.where(ActivityLog.action.startswith(filters["action"]))
    if filters["target"]:
        query = query.where(ActivityLog.target.contains(filters["target"]))
    for key, compare in (("since", ActivityLog.time.__ge__), ("until", ActivityLog.time.__le__)):
        if filters[key]:
            try:
                query = query.where(compare(datetime.datetime.fromisoformat(filters[key])))
            except ValueError:
                flash(f"Ignored {key}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM.", "error")
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 10**9)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    entries = db.scalars(query.order_by(ActivityLog.time.desc(), ActivityLog.id.desc())
                         .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(page, pages)
    return render_template("activity/index.html", entries=entries, filters=filters,
                           page=page, pages=pages, total=total)


@bp.post("/clear")
@require_role(Role.ADMIN)
def clear() -> Response:
    db = database.session()
    removed = db.execute(delete(ActivityLog)).rowcount  # type: ignore[attr-defined]
    record(db, "activity.clear", detail=f"{removed} entries removed")
    db.commit()
    flash(f"Activity log cleared ({removed} entries).", "success")
    return redirect(url_for("activity.index"))
