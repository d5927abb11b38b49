"""The activity log page (admins): search by user, action, target and time; clear."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..context import actor
from ..guard import permission
from ..services import activity
from ..services.access import Permission
from ..storage import db as database

bp = Blueprint("activity", __name__, url_prefix="/activity")

PAGE_SIZE = 50


@bp.get("/")
@permission(Permission.ACTIVITY)
def index() -> str:
    filters = {key: request.args.get(key, "").strip() for key in activity.FILTERS}
    found = activity.search(database.session(), filters,
                            min(request.args.get("page", 1, type=int) or 1, 10**9), PAGE_SIZE)
    for key in found.ignored:
        flash(f"Ignored {key}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM.", "error")
    return render_template("activity/index.html", entries=found.entries, filters=filters,
                           page=found.page, pages=found.pages, total=found.total)


@bp.post("/clear")
@permission(Permission.ACTIVITY)
def clear() -> Response:
    db = database.session()
    removed = activity.clear(db, actor())
    db.commit()
    flash(f"Activity log cleared ({removed} entries).", "success")
    return redirect(url_for("activity.index"))
