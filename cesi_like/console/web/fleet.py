"""The fleet in the browser: dashboard, node, fleet-wide process list, group and process pages,
and the process action forms. Every page reads the poller's snapshot, never a node; the live
parts re-fetch their fragment (`X-Fragment`) with an ETag, so an unchanged table costs a 304."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from ...supervisor_rpc.node import NodeState
from ..context import actor, confirmation, console, snapshot_views
from ..guard import safe_next
from ..services import (
    Invalid,
    NotFound,
    Problem,
    access,
    actions,
    activity,
    bulk,
    config_updates,
    history,
    logs,
    problems,
    snapshot,
)
from ..services.access import Permission
from ..services.actions import SIGNALS, Target
from ..services.confirm import ConfirmationNeeded
from ..services.snapshot import STATE_CLASSES, NodeView, ProcessFilter
from ..storage import db as database
from .flows import confirm_page
from .forms import ConfirmForm
from .fragments import live_page

bp = Blueprint("fleet", __name__)

PAGE_SIZE = 200
SORTS = {
    "node": lambda row: (row["node"], row["group"], row["name"]),
    "name": lambda row: (row["group"], row["name"], row["node"]),
    "state": lambda row: (row["statename"], row["node"], row["group"], row["name"]),
    "uptime": lambda row: (-(row["start"] or 0), row["node"], row["name"]),
}


def _common() -> dict[str, Any]:
    return {"confirm": ConfirmForm(), "interval": int(current_app.config[
        "CESI_POLL_INTERVAL"] * 1000)}


def views(nodes: Any) -> list[NodeView]:
    return snapshot_views(database.session(), nodes)


@bp.get("/")
def dashboard() -> Response:
    db = database.session()
    shown = views(access.nodes(db, actor()))
    totals: dict[str, int] = {}
    for view in shown:
        for state, count in view.counts().items():
            totals[state] = totals.get(state, 0) + count
    environments = []
    for env in access.environments(db, actor()):
        members = [v for v in shown if any(e.id == env.id for e in v.node.environments)]
        if members:
            environments.append(_health(env.name, members))
    recent = activity.newest(db, 8) if access.allows(actor(), Permission.ACTIVITY) else []
    down = [v for v in shown if v.state not in (NodeState.ONLINE, NodeState.DISABLED)]
    return live_page("fleet/dashboard.html", "fleet/_dashboard.html", views=shown,
                     totals=totals, environments=environments, down=down, activity=recent,
                     firing=problems.open_problems(db, actor()), **_common())


def _health(name: str, members: list[NodeView]) -> dict[str, Any]:
    processes = [p for v in members for p in v.processes]
    running = sum(1 for p in processes if p["statename"] == "RUNNING")
    online = sum(1 for v in members if v.state == NodeState.ONLINE)
    healthy = online == len(members) and running == len(processes)
    return {"name": name, "nodes": len(members), "online": online,
            "processes": len(processes), "running": running, "healthy": healthy}


@bp.get("/nodes/<name>")
def node(name: str) -> Response:
    db = database.session()
    found = access.node(db, actor(), name)
    view = views([found])[0]
    changes = snapshot.state_changes(db, found.name, limit=20)
    reachability = history.node_reachability(db, found.name, view.state, view.since)
    return live_page("fleet/node.html", "fleet/_node.html", view=view, changes=changes,
                     reachability=reachability, **_common())


@bp.route("/nodes/<name>/config", methods=["GET", "POST"])
def node_config(name: str) -> Response:
    """The node's reread config changes, with a box per group; Apply does `update` on the
    ticked ones (operators)."""
    db = database.session()
    client = console().nodes
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        try:  # nothing ticked changes nothing (the API's "every change" is no body at all)
            results = config_updates.apply(db, client, actor(), name,
                                           request.form.getlist("group"))
        except Problem as exc:
            db.rollback()
            flash("Tick at least one group to apply." if exc.field == "groups"
                  else exc.message, "error")
        else:
            for result in results:
                flash(f"{result['change']} {result['group']}: "
                      f"{'ok' if result['ok'] else result['error']}",
                      "success" if result["ok"] else "error")
        return redirect(url_for("fleet.node_config", name=name))
    diff, problem = None, None
    try:
        diff = config_updates.preview(db, client, actor(), name)
    except Problem as exc:
        db.rollback()
        problem = exc.message
    return make_response(render_template("fleet/config.html", name=name, diff=diff,
                                         problem=problem, confirm=ConfirmForm()))


@bp.get("/nodes/<name>/log")
def node_log(name: str) -> Response:
    """The node's main log, re-read every few seconds in the browser (admins)."""
    found = logs.locate(database.session(), actor(), name, Permission.MAIN_LOG)
    return make_response(render_template("fleet/main_log.html", name=found.name))


@bp.get("/search")
def search() -> str:
    """Nodes, groups and processes by name, across the fleet the user may see (the search box
    on every page; `/` focuses it)."""
    term = request.args.get("q", "")[:200]
    found = snapshot.search(views(access.nodes(database.session(), actor())), term)
    return render_template("fleet/search.html", term=term, found=found)


@bp.get("/processes")
def processes() -> Response:
    db = database.session()
    args = request.args
    where = ProcessFilter.from_query(args)
    visible = access.nodes(db, actor())
    rows = snapshot.processes(views(where.nodes(visible)), where)
    sort = args.get("sort", "node") if args.get("sort") in SORTS else "node"
    rows.sort(key=SORTS[sort])
    pages = max(1, (len(rows) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(1, args.get("page", 1, type=int) or 1), pages)
    environments = sorted({env.name for n in visible for env in n.environments})
    return live_page("fleet/processes.html", "fleet/_processes.html",
                     rows=rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], total=len(rows),
                 page=page, pages=pages, sort=sort, filters=where,
                 node_names=[n.name for n in visible], environments=environments,
                 states=[*STATE_CLASSES, "RUNNING", "STARTING", "BACKOFF", "STOPPING",
                         "STOPPED", "EXITED", "FATAL", "UNKNOWN"],
                 query={k: v for k, v in args.items() if k != "page"}, signals=SIGNALS,
                 **_common())


@bp.post("/processes/bulk")
def bulk_action() -> Response | str:
    """The processes page's bulk form: start, stop, restart or signal the ticked rows, or
    every process its filters match, on all their nodes at once, as one bulk job whose page
    shows each node's results as they arrive."""
    back = safe_next(request.form.get("next"), url_for("fleet.processes"))
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; reload the page and try again.", "error")
        return redirect(back)
    db = database.session()
    form = request.form
    action = form.get("action", "")
    try:
        if form.get("scope") == "matching":
            where = ProcessFilter.from_query(form)
            rows = snapshot.processes(views(where.nodes(access.nodes(db, actor()))), where)
            if not rows:
                raise Invalid("no process matches the filters")
            chosen = [f"{row['node']}/{row['group']}:{row['name']}" for row in rows]
        else:
            chosen = form.getlist("target")
        job = bulk.start(db, actor(), action, bulk.picked(db, actor(), chosen),
                         signal=form.get("signal") if action == "signal" else None,
                         confirmation=confirmation(form.get("confirm")))
    except ConfirmationNeeded as need:
        db.rollback()
        return confirm_page(need, back)
    except Problem as exc:
        db.rollback()
        flash(f"Bulk {action[:32]}: {exc.message}", "error")
        return redirect(back)
    console().wake_jobs()
    flash(f"Bulk action queued: {job.title}.", "success")
    return redirect(url_for("jobs.show", job_id=job.id))


@bp.get("/groups/<group>")
def group(group: str) -> Response:
    db = database.session()
    where = ProcessFilter(group=group)
    running = [v for v in views(access.nodes(db, actor()))
               if any(p["group"] == group for p in v.processes)]
    if not running:  # nowhere the user may look (or nowhere at all): alike
        raise NotFound(f"no group {group[:64]!r} on a node you may see")
    rows = snapshot.processes(running, where)
    return live_page("fleet/group.html", "fleet/_group.html", group=group, views=running,
                     rows=rows, **_common())


@bp.get("/nodes/<name>/processes/<spec>")
def process(name: str, spec: str) -> Response:
    db = database.session()
    found = access.node(db, actor(), name)
    target = Target.parse(spec)
    view = views([found])[0]
    info = next((p for p in view.processes
                 if p["group"] == target.group and p["name"] == target.name), None)
    changes = snapshot.state_changes(db, found.name, target.group, target.name, limit=30)
    counts = history.process_counts(db, found.name, target.group or "", target.name or "")
    return live_page("fleet/process.html", "fleet/_process.html", view=view, info=info,
                     spec=target.spec, changes=changes, counts=counts, signals=SIGNALS,
                     **_common())


@bp.post("/nodes/<name>/processes/<spec>/<action>")
def act(name: str, spec: str, action: str) -> Response | str:
    """The action forms: run it, flash the per-target results, go back where the user was."""
    back = safe_next(request.form.get("next"), url_for("fleet.node", name=name))
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; reload the page and try again.", "error")
        return redirect(back)
    try:
        outcome = actions.perform(database.session(), console().nodes, actor(), name, spec,
                                  action, request.form.get("signal"),
                                  current_app.config["CESI_ACTION_TIMEOUT"],
                                  confirmation=confirmation(request.form.get("confirm")))
    except ConfirmationNeeded as need:
        return confirm_page(need, back)
    except Problem as exc:
        flash(f"{action} {spec} on {name}: {exc.message}", "error")
        return redirect(back)
    failed = [r for r in outcome.results if not r["ok"]]
    if failed:
        flash(f"{action} on {name}: " + "; ".join(
            f"{r['name']}: {r['error']}" for r in failed[:10]), "error")
    else:
        flash(f"{action} on {name}: {', '.join(r['name'] for r in outcome.results[:10])} ok.",
              "success")
    return redirect(back)
