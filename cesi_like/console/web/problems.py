"""What is wrong now, in the browser: `/alerts` lists the open problems (acknowledge with a
note), the silences in force (add, end early) and the nodes in maintenance; a node's page
puts it in maintenance. The rules are `services/problems.py`."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from werkzeug.wrappers import Response

from ..context import actor
from ..guard import permission, safe_next
from ..services import problems
from ..services.access import Permission
from ..storage import db as database
from .flows import pressed
from .forms import ConfirmForm

bp = Blueprint("problems", __name__)


@bp.get("/alerts")
def index() -> str:
    db = database.session()
    return render_template("problems/index.html", problems=problems.open_problems(db, actor()),
                           silences=problems.silences(db, actor()), kinds=problems.KINDS,
                           maintenance=problems.maintenance_nodes(db, actor()),
                           confirm=ConfirmForm())


@bp.post("/alerts/<int:firing_id>/ack")
@permission(Permission.ALERTS)
def ack(firing_id: int) -> Response:
    def acknowledge() -> str:
        firing = problems.acknowledge(database.session(), actor(), firing_id,
                                      request.form.get("note", ""))
        return f"Acknowledged: {firing.subject}."

    return pressed(acknowledge, url_for("problems.index"))


@bp.post("/alerts/silences")
@permission(Permission.ALERTS)
def silence() -> Response:
    form = request.form

    def add() -> str:
        found = problems.silence(database.session(), actor(), form.get("kind"),
                                 form.get("target"), form.get("minutes", type=int),
                                 form.get("reason"))
        return (f"Silenced {found.kind} {found.target} until "
                f"{found.until.isoformat(timespec='minutes')} UTC.")

    return pressed(add, url_for("problems.index"))


@bp.post("/alerts/silences/<int:silence_id>/end")
@permission(Permission.ALERTS)
def end(silence_id: int) -> Response:
    def finish() -> str:
        found = problems.end_silence(database.session(), actor(), silence_id)
        return f"The silence of {found.kind} {found.target} is over."

    return pressed(finish, url_for("problems.index"))


@bp.post("/nodes/<name>/maintenance")
@permission(Permission.ALERTS)
def maintenance(name: str) -> Response:
    back = safe_next(request.form.get("next"), url_for("fleet.node", name=name))

    def switch() -> str:
        node = problems.set_maintenance(database.session(), actor(), name,
                                        request.form.get("on") == "1",
                                        request.form.get("note", ""))
        return (f"{node.name} is in maintenance: no alerts, rolling restarts pass it."
                if node.maintenance else f"{node.name} is out of maintenance.")

    return pressed(switch, back)
