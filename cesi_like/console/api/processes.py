"""`/api/v1` for the fleet: node states and processes from the poller's snapshot, process
actions, and logs. A thin adapter: the rules are in `services`."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, stream_with_context

from ..services import Invalid, actions, config_updates, history, logs, stats
from ..services import snapshot as snapshot
from ..services.snapshot import Freshness, NodeView, ProcessFilter
from ..storage import db as database
from ..web.activity import actor
from . import bp, node_json


def freshness() -> Freshness:
    return Freshness(current_app.config["CESI_POLL_INTERVAL"],
                     current_app.config["CESI_NODE_TIMEOUT"])


def views(db: Any, nodes: Any) -> list[NodeView]:
    """The snapshot of `nodes`, through this worker's cache."""
    return snapshot.view(db, nodes, freshness(), current_app.extensions["cesi_snapshots"])


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def node_state_json(view: NodeView) -> dict[str, Any]:
    return {**node_json(view.node), "state": view.state, "reason": view.reason,
            "since": _iso(view.since), "last_ok": _iso(view.last_ok),
            "polled_at": _iso(view.polled_at), "stale": view.stale, "version": view.version,
            "process_count": len(view.processes), "counts": view.counts()}


def process_filter() -> ProcessFilter:
    args = request.args
    return ProcessFilter(node=args.get("node", ""), environment=args.get("environment", ""),
                         group=args.get("group", ""), state=args.get("state", ""),
                         search=args.get("q", "")[:200])


@bp.get("/nodes")
def list_nodes() -> Response:
    db = database.session()
    found = views(db, snapshot.visible(db, actor().user))  # type: ignore[arg-type]
    return jsonify([node_state_json(v) for v in found])


@bp.get("/processes")
def list_processes() -> Response:
    db = database.session()
    where = process_filter()
    nodes = where.nodes(snapshot.visible(db, actor().user))  # type: ignore[arg-type]
    if where.per_process():
        return jsonify(snapshot.processes(views(db, nodes), where))
    # no per-process filter: whole nodes, already encoded once per poll (see SnapshotCache)
    cache: snapshot.SnapshotCache = current_app.extensions["cesi_snapshots"]
    parts = [text for view in views(db, nodes) if (text := cache.api_json(view))]
    return Response("[" + ",".join(parts) + "]", mimetype="application/json")


@bp.post("/nodes/<name>/processes/<spec>/"
         "<any(start, stop, restart, signal, 'clear-logs'):action>")
def process_action(name: str, spec: str, action: str) -> tuple[Response, int]:
    """start|stop|restart|signal|clear-logs on group:name, group:* or * (operator)."""
    body = request.get_json(silent=True) if request.content_length else None
    signal = body.get("signal") if isinstance(body, dict) else None
    if signal is not None and not isinstance(signal, str):
        signal = ""
    outcome = actions.perform(database.session(), current_app.extensions["cesi_nodes"],
                              actor(), name, spec, action, signal,
                              current_app.config["CESI_ACTION_TIMEOUT"])
    return jsonify(results=outcome.results), 200 if outcome.ok else 409


@bp.get("/nodes/<name>/processes/<spec>/log")
def process_log(name: str, spec: str) -> Response:
    peer = logs.locate(database.session(), actor(), name)
    return jsonify(logs.tail(current_app.extensions["cesi_nodes"], peer, spec,
                             request.args.get("stream", "stdout"),
                             request.args.get("offset", 0), request.args.get("length", 65536)))


@bp.get("/nodes/<name>/processes/<spec>/log/download")
def process_log_download(name: str, spec: str) -> Response:
    stream = request.args.get("stream", "stdout")
    peer = logs.locate(database.session(), actor(), name)
    chunks = logs.download(current_app.extensions["cesi_nodes"], peer, spec, stream)
    filename = f"{name}-{spec.replace(':', '-')}-{stream}.log"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return Response(stream_with_context(chunks), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"',
                             "X-Content-Type-Options": "nosniff"})


@bp.get("/nodes/<name>/log")
def node_main_log(name: str) -> Response:
    peer = logs.locate_main_log(database.session(), actor(), name)
    return jsonify(logs.main_tail(current_app.extensions["cesi_nodes"], peer,
                                  request.args.get("length", 65536)))


@bp.get("/nodes/<name>/stats")
def node_stats(name: str) -> Response:
    """CPU time and memory of each process, live from a cesi-agentd node."""
    return jsonify(stats.process_stats(database.session(), current_app.extensions["cesi_nodes"],
                                       actor(), name))


@bp.get("/nodes/<name>/history")
def node_history(name: str) -> Response:
    """How long the node has been in its state, its share online over 1 h / 24 h / 7 d, and
    its recent state changes."""
    db = database.session()
    node = actions.node_for(db, actor(), name)
    view = views(db, [node])[0]
    return jsonify(history.node_reachability(db, node.name, view.state, view.since))


@bp.get("/nodes/<name>/processes/<spec>/history")
def process_history(name: str, spec: str) -> Response:
    """Starts, crashes and FATALs over 1 h / 24 h / 7 d, and the recent state changes."""
    db = database.session()
    node = actions.node_for(db, actor(), name)
    target = actions.Target.parse(spec)
    if target.group is None or target.name is None:
        raise Invalid("history is per process: group:name")
    changes = snapshot.state_changes(db, node.name, target.group, target.name, limit=50)
    return jsonify({"counts": history.process_counts(db, node.name, target.group, target.name),
                    "changes": [{"time": _iso(c.time), "from": c.from_state, "to": c.to_state,
                                 "pid": c.pid, "exitstatus": c.exitstatus} for c in changes]})


@bp.get("/nodes/<name>/config")
def config_diff(name: str) -> Response:
    """What the node's config file now says differs from what runs, as `supervisorctl reread`
    shows it (operator; the node rereads its config, nothing changes yet)."""
    return jsonify(config_updates.preview(database.session(),
                                          current_app.extensions["cesi_nodes"], actor(), name))


@bp.post("/nodes/<name>/config/apply")
def config_apply(name: str) -> tuple[Response, int]:
    """Apply the reread changes, or only `groups`, as `supervisorctl update` (operator);
    409 when some failed."""
    body = request.get_json(silent=True) if request.content_length else None
    if body is not None and not isinstance(body, dict):
        raise Invalid("send a JSON object: {\"groups\": [...]} or nothing")
    results = config_updates.apply(database.session(), current_app.extensions["cesi_nodes"],
                                   actor(), name, (body or {}).get("groups"))
    return jsonify(results=results), 200 if all(r["ok"] for r in results) else 409
