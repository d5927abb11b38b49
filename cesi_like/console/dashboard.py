"""The home page: the nodes you may see, probed live in parallel."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from . import db as database
from . import fleet
from .security import visible_nodes

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index() -> str:
    db = database.session()
    nodes = visible_nodes(db, current_user)
    outcomes = fleet.probe_all([fleet.Target.of(n) for n in nodes if n.enabled],
                               current_app.config["CESI_NODE_TIMEOUT"])
    return render_template("dashboard/index.html", nodes=nodes, outcomes=outcomes)
