"""`/api/v1/nodes`: nodes in the caller's scope with their state, and (admins) adding,
changing and removing them; a node's live process stats, its history and its main log."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from ..context import actor, console, snapshot_views
from ..guard import permission
from ..services import access, history, logs, samples, stats
from ..services import nodes as node_rules
from ..services.access import Permission
from ..services.snapshot import NodeView
from ..storage import db as database
from ..storage.models import Node
from .base import body, bp, created, deleted, iso


def node_json(node: Node) -> dict[str, Any]:
    """A node as the API shows it: never its password."""
    return {"name": node.name, "url": node.url, "username": node.username,
            "has_password": node.password is not None, "enabled": node.enabled,
            "verify_tls": node.verify_tls, "notes": node.notes,
            "environments": [env.name for env in node.environments]}


def node_state_json(view: NodeView) -> dict[str, Any]:
    return {**node_json(view.node), "state": view.state, "reason": view.reason,
            "since": iso(view.since), "last_ok": iso(view.last_ok),
            "polled_at": iso(view.polled_at), "stale": view.stale, "version": view.version,
            "process_count": len(view.processes), "counts": view.counts()}


@bp.get("/nodes")
def list_nodes() -> Response:
    db = database.session()
    return jsonify([node_state_json(v) for v in snapshot_views(db, access.nodes(db, actor()))])


@bp.post("/nodes")
@permission(Permission.NODES)
def create_node() -> tuple[Response, int]:
    db = database.session()
    node = node_rules.create_node(db, console().nodes, console().secrets, actor(),
                                  body(node_rules.NODE_FIELDS))
    return created(lambda: node_json(node))


@bp.route("/nodes/<name>", methods=["PATCH", "PUT"])
@permission(Permission.NODES)
def update_node(name: str) -> Response:
    db = database.session()
    node = node_rules.update_node(db, console().nodes, console().secrets, actor(),
                                  access.node(db, actor(), name),
                                  body(node_rules.NODE_FIELDS))
    db.commit()
    return jsonify(node_json(node))


@bp.delete("/nodes/<name>")
@permission(Permission.NODES)
def delete_node(name: str) -> tuple[str, int]:
    return deleted(lambda db: node_rules.delete_node(db, actor(), access.node(db, actor(), name)))


@bp.get("/nodes/<name>/stats")
def node_stats(name: str) -> Response:
    """CPU time and memory of each process, live from a cesi-agentd node."""
    return jsonify(stats.process_stats(database.session(), console().nodes, actor(), name))


@bp.get("/nodes/<name>/history")
def node_history(name: str) -> Response:
    """How long the node has been in its state, its share online over 1 h / 24 h / 7 d, and
    its recent state changes; with `metric` and `range`: the sum of its processes' stored
    samples and its state changes over the range, for the charts."""
    db = database.session()
    node = access.node(db, actor(), name)
    if "metric" in request.args or "range" in request.args:
        return jsonify(samples.node_series(db, node.name, request.args.get("metric", "memory"),
                                           request.args.get("range", "1h")))
    view = snapshot_views(db, [node])[0]
    return jsonify(history.node_reachability(db, node.name, view.state, view.since))


@bp.get("/nodes/<name>/log")
def node_main_log(name: str) -> Response:
    peer = logs.locate(database.session(), actor(), name, Permission.MAIN_LOG)
    return jsonify(logs.main_tail(console().nodes, peer, request.args.get("length", 65536)))
