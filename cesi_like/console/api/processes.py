"""`/api/v1/processes` and a node's processes: every process in the caller's scope from the
poller's snapshot; actions on one, a group or all; log tails and downloads; history."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request, stream_with_context

from ..context import actor, confirmation, console, snapshot_views
from ..services import Invalid, access, actions, history, logs, samples, snapshot
from ..services.snapshot import ProcessFilter
from ..storage import db as database
from .base import body, bp, iso


@bp.get("/processes")
def list_processes() -> Response:
    db = database.session()
    where = ProcessFilter.from_query(request.args)
    views = snapshot_views(db, where.nodes(access.nodes(db, actor())))
    if where.per_process():
        return jsonify(snapshot.processes(views, where))
    # no per-process filter: whole nodes, already encoded once per poll (see SnapshotCache)
    parts = [text for view in views if (text := console().snapshots.api_json(view))]
    return Response("[" + ",".join(parts) + "]", mimetype="application/json")


@bp.post("/nodes/<name>/processes/<spec>/"
         "<any(start, stop, restart, signal, 'clear-logs', disable, enable):action>")
def process_action(name: str, spec: str, action: str) -> tuple[Response, int]:
    """start|stop|restart|signal|clear-logs on group:name, group:* or *; disable|enable on
    group:name or group:* of a cesi-agentd node (operator)."""
    data = body({"signal", "confirm"}, required=False)
    signal = data.get("signal")
    if signal is not None and not isinstance(signal, str):
        raise Invalid("signal: a signal name such as HUP", "signal")
    outcome = actions.perform(database.session(), console().nodes, actor(), name, spec,
                              action, signal, current_app.config["CESI_ACTION_TIMEOUT"],
                              confirmation=confirmation(data.get("confirm")))
    return jsonify(results=outcome.results), 200 if outcome.ok else 409


@bp.get("/nodes/<name>/processes/<spec>/log")
def process_log(name: str, spec: str) -> Response:
    peer = logs.locate(database.session(), actor(), name)
    return jsonify(logs.tail(console().nodes, peer, spec, request.args.get("stream", "stdout"),
                             request.args.get("offset", 0), request.args.get("length", 65536)))


@bp.get("/nodes/<name>/processes/<spec>/log/download")
def process_log_download(name: str, spec: str) -> Response:
    stream = request.args.get("stream", "stdout")
    peer = logs.locate(database.session(), actor(), name)
    chunks = logs.download(console().nodes, peer, spec, stream)
    filename = f"{name}-{spec.replace(':', '-')}-{stream}.log"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return Response(stream_with_context(chunks), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"',
                             "X-Content-Type-Options": "nosniff"})


@bp.get("/nodes/<name>/processes/<spec>/history")
def process_history(name: str, spec: str) -> Response:
    """Starts, crashes and FATALs over 1 h / 24 h / 7 d, and the recent state changes; with
    `metric` (cpu, memory) and `range` (1h, 24h, 7d): the stored samples and the state
    changes over the range, for the charts."""
    db = database.session()
    node = access.node(db, actor(), name)
    target = actions.Target.parse(spec)
    if target.group is None or target.name is None:
        raise Invalid("history is per process: group:name")
    if "metric" in request.args or "range" in request.args:
        return jsonify(samples.series(db, node.name, target.group, target.name,
                                      request.args.get("metric", "memory"),
                                      request.args.get("range", "1h")))
    changes = snapshot.state_changes(db, node.name, target.group, target.name, limit=50)
    return jsonify({"counts": history.process_counts(db, node.name, target.group, target.name),
                    "changes": [{"time": iso(c.time), "from": c.from_state, "to": c.to_state,
                                 "pid": c.pid, "exitstatus": c.exitstatus} for c in changes]})
