"""`/api/v1/problems`, `/api/v1/silences` and a node's maintenance: what is firing now,
acknowledging it, keeping quiet on purpose (`services/problems.py`)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from ..context import actor
from ..guard import permission
from ..services import access, problems
from ..services.access import Permission
from ..storage import db as database
from ..storage.models import Silence
from .base import body, bp, created, deleted, iso

SILENCE_FIELDS = ("kind", "target", "minutes", "reason")


def problem_json(found: problems.OpenProblem) -> dict[str, Any]:
    firing = found.firing
    return {"id": firing.id, "rule": found.rule.name, "kind": found.rule.kind,
            "node": found.node, "process": found.process, "since": iso(firing.time),
            "acknowledged": None if firing.ack_by is None else {
                "by": firing.ack_by, "at": iso(firing.ack_at), "note": firing.ack_note},
            "silenced": found.muted}


def silence_json(found: Silence) -> dict[str, Any]:
    return {"id": found.id, "kind": found.kind, "target": found.target,
            "until": iso(found.until), "reason": found.reason, "by": found.created_by}


@bp.get("/problems")
def list_problems() -> Response:
    """The open problems on nodes in your scope, newest first."""
    return jsonify([problem_json(p) for p in problems.open_problems(database.session(),
                                                                     actor())])


@bp.post("/problems/<int:firing_id>/ack")
@permission(Permission.ALERTS)
def ack_problem(firing_id: int) -> Response:
    db = database.session()
    problems.acknowledge(db, actor(), firing_id, body({"note"}, required=False).get("note"))
    db.commit()
    return jsonify(next(problem_json(p) for p in problems.open_problems(db, actor())
                        if p.firing.id == firing_id))


@bp.get("/silences")
def list_silences() -> Response:
    return jsonify([silence_json(s) for s in problems.silences(database.session(), actor())])


@bp.post("/silences")
@permission(Permission.ALERTS)
def create_silence() -> tuple[Response, int]:
    data = body(set(SILENCE_FIELDS))
    found = problems.silence(database.session(), actor(), *map(data.get, SILENCE_FIELDS))
    return created(lambda: silence_json(found))


@bp.delete("/silences/<int:silence_id>")
@permission(Permission.ALERTS)
def end_silence(silence_id: int) -> tuple[str, int]:
    """End a silence before its time (it stays in the activity log)."""
    return deleted(lambda db: problems.end_silence(db, actor(), silence_id))


@bp.put("/nodes/<name>/maintenance")
@permission(Permission.ALERTS)
def node_maintenance(name: str) -> Response:
    """`{"on": true, "note": "..."}` puts the node in maintenance, `{"on": false}` ends it."""
    db = database.session()
    access.node(db, actor(), name, Permission.ALERTS, "node.maintenance")  # 404 off scope
    data = body({"on", "note"})
    node = problems.set_maintenance(db, actor(), name, data.get("on"), data.get("note"))
    db.commit()
    return jsonify({"node": node.name, "maintenance": node.maintenance,
                    "note": node.maintenance_note})
