"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from ... import __version__
from ...supervisor_rpc.node import NodeState
from ..services.jobs import JobState, StepState
from .base import bp


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
TIME = {"type": ["string", "null"], "description": "UTC, ISO 8601"}
NODE = {"type": "object", "properties": {
    "name": {"type": "string"}, "url": {"type": "string"},
    "username": {"type": ["string", "null"]}, "has_password": {"type": "boolean"},
    "enabled": {"type": "boolean"}, "verify_tls": {"type": "boolean"},
    "notes": {"type": "string"},
    "environments": {"type": "array", "items": {"type": "string"}}}}
NODE_STATE = {"type": "object", "properties": {
    **NODE["properties"],  # type: ignore[dict-item]
    "state": {"enum": [state.value for state in NodeState]},
    "reason": {"type": "string"}, "since": TIME, "last_ok": TIME, "polled_at": TIME,
    "stale": {"type": "boolean"}, "version": {"type": ["string", "null"]},
    "process_count": {"type": "integer"},
    "counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
    "required": ["name", "state", "reason", "last_ok", "stale", "process_count"]}
PROCESS = {"type": "object", "properties": {
    "node": {"type": "string"}, "group": {"type": "string"}, "name": {"type": "string"},
    "statename": {"enum": ["STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED",
                           "FATAL", "UNKNOWN"]},
    "state": {"type": "integer"}, "pid": {"type": "integer"},
    "description": {"type": "string"}, "start": {"type": "integer"},
    "stop": {"type": "integer"}, "now": {"type": "integer"},
    "exitstatus": {"type": "integer"}, "spawnerr": {"type": "string"},
    "stale": {"type": "boolean"}},
    "required": ["node", "group", "name", "statename", "state", "pid", "description", "start",
                 "stop", "now", "exitstatus", "spawnerr", "stale"]}
RESULTS = {"type": "object", "properties": {"results": {"type": "array", "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"},
                                     "error": {"type": ["string", "null"]}},
    "required": ["name", "ok", "error"]}}}, "required": ["results"]}
LOG = {"type": "object", "properties": {"data": {"type": "string"},
                                        "offset": {"type": "integer"},
                                        "overflow": {"type": "boolean"}},
       "required": ["data", "offset", "overflow"]}
NAME_PATTERN = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}
NODE_INPUT = {"type": "object", "properties": {
    "name": NAME_PATTERN, "url": {"type": "string", "pattern": "^(https?|unix)://"},
    "host": {"type": "string", "pattern": "^[A-Za-z0-9.-]{1,253}$"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "username": {"type": "string"},
    "password": {"type": "string", "writeOnly": True}, "enabled": {"type": "boolean"},
    "verify_tls": {"type": "boolean"}, "ca_file": {"type": "string"},
    "client_cert": {"type": "string"},
    "notes": {"type": "string"}, "environments": {"type": "array", "items": {"type": "string"}}}}
TOKEN = {"type": "object", "required": ["id", "name", "username", "created", "read_only"],
         "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                        "username": {"type": "string"}, "created": {"type": "string"},
                        "last_used": {"type": ["string", "null"]},
                        "expires": {"type": ["string", "null"]},
                        "read_only": {"type": "boolean"}, "expired": {"type": "boolean"},
                        "token": {"type": "string",
                                  "description": "the secret: only in the answer to POST"}}}
TOKEN_INPUT = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 64},
    "expires_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650},
    "read_only": {"type": "boolean"},
    "username": {"type": "string", "description": "admins: make it for this user"}}}
MAIN_LOG = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
ENVIRONMENT = {"type": "object", "properties": {
    "name": {"type": "string"}, "description": {"type": "string"},
    "protected": {"type": "boolean"},
    "nodes": {"type": "array", "items": {"type": "string"}}}}
ENVIRONMENT_INPUT = {"type": "object", "properties": {
    "name": NAME_PATTERN, "description": {"type": "string"},
    "protected": {"type": "boolean", "description": "a stop, restart or signal of any of "
                  "its processes needs \"confirm\" (428 without it)"},
    "nodes": {"type": "array", "items": {"type": "string"}}}}
USER = {"type": "object", "properties": {
    "username": {"type": "string"}, "role": {"enum": ["admin", "operator", "viewer"]},
    "active": {"type": "boolean"}, "environments": {"type": "array", "items": {"type": "string"}},
    "source": {"enum": ["local", "ldap", "oidc"],
               "description": "where the user signs in; ldap and oidc accounts have no "
                              "password here and follow their directory's groups"},
    "created": {"type": "string"}, "last_login": {"type": ["string", "null"]}}}
USER_INPUT = {"type": "object", "properties": {
    "username": NAME_PATTERN,
    "password": {"type": "string", "writeOnly": True, "minLength": 8, "maxLength": 256},
    "role": {"enum": ["admin", "operator", "viewer"]}, "active": {"type": "boolean"},
    "environments": {"type": "array", "items": {"type": "string"}}}}

STEP = {"type": "object", "required": ["node", "state"], "properties": {
    "node": {"type": "string"},
    "state": {"enum": [state.value for state in StepState]},
    "detail": {"type": "string", "description": "shown to those who may run the job"},
    "started": TIME, "finished": TIME,
    "spec": {"type": "string", "description": "bulk actions: the target on the node"},
    "results": {**RESULTS["properties"]["results"],  # type: ignore[index]
                "description": "bulk actions: each process's result"}}}
JOB = {"type": "object", "required": ["id", "kind", "state", "title", "steps", "message"],
       "properties": {
           "id": {"type": "integer"}, "kind": {"enum": ["rolling-restart", "bulk-action"]},
           "state": {"enum": [state.value for state in JobState]},
           "title": {"type": "string"}, "user": {"type": ["string", "null"]},
           "spec": {"type": "object"}, "steps": {"type": "array", "items": STEP},
           "message": {"type": ["string", "null"],
                       "description": "null unless you may run this kind of job"},
           "cancel_requested": {"type": "boolean"},
           "takeovers": {"type": "integer",
                         "description": "times another console process resumed it"},
           "created": TIME, "updated": TIME, "finished": TIME}}
CONFIRM = {"type": "string", "description": "the name that confirms a stop, restart or "
           "signal of more than confirm_over processes or in a protected environment (the "
           "428 answer says which name, and what the action touches per node)"}
ROLLOUT_INPUT = {"type": "object", "required": ["environment", "group"], "properties": {
    "confirm": CONFIRM,
    "include_maintenance": {"type": "boolean", "default": False,
                            "description": "restart nodes in maintenance too"},
    "environment": {"type": "string"}, "group": {"type": "string"},
    "batch_size": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
    "pause": {"type": "number", "minimum": 0, "maximum": 3600, "default": 0,
              "description": "seconds between batches"},
    "keep_going": {"type": "boolean", "default": False,
                   "description": "go on after a node fails"}}}

BULK_INPUT = {"type": "object", "required": ["action"], "properties": {
    "action": {"enum": ["start", "stop", "restart", "signal", "update"],
               "description": "update: apply each node's config changes (spec *)"},
    "signal": {"type": "string", "description": "with action signal: HUP, TERM, USR1..."},
    "targets": {"type": "array", "items": {
        "type": "object", "required": ["node", "spec"],
        "properties": {"node": {"type": "string"},
                       "spec": {"type": "string",
                                "description": "group:name, group:* or *"}}}},
    "spec": {"type": "string", "description": "with environment or nodes"},
    "environment": {"type": "string"},
    "nodes": {"type": "array", "items": {"type": "string"}}, "confirm": CONFIRM}}

STATS = {"type": "object", "required": ["available"], "properties": {
    "available": {"type": "boolean"}, "reason": {"type": "string"},
    "now": {"type": "number", "description": "the node's clock, seconds"},
    "processes": {"type": "array", "items": {
        "type": "object",
        "required": ["group", "name", "pid", "cpu_seconds", "rss_kb", "processes"],
        "properties": {"group": {"type": "string"}, "name": {"type": "string"},
                       "pid": {"type": "integer"}, "cpu_seconds": {"type": "number"},
                       "rss_kb": {"type": "integer"},
                       "processes": {"type": "integer",
                                     "description": "with its descendants"}}}}}}

WINDOW_COUNTS = {"type": "object", "properties": {
    window: {"type": "object", "properties": {
        "starts": {"type": "integer"}, "crashes": {"type": "integer"},
        "fatals": {"type": "integer"}}} for window in ("1h", "24h", "7d")}}
NODE_HISTORY = {"type": "object", "required": ["state", "online_percent", "changes"],
                "properties": {
                    "state": {"type": "string"}, "for_seconds": {"type": ["integer", "null"]},
                    "online_percent": {"type": "object", "additionalProperties": {
                        "type": ["number", "null"]}},
                    "changes": {"type": "array", "items": {"type": "object", "properties": {
                        "time": TIME, "from": {"type": ["string", "null"]},
                        "to": {"type": "string"}, "reason": {"type": "string"}}}}}}
PROCESS_HISTORY = {"type": "object", "required": ["counts", "changes"], "properties": {
    "counts": WINDOW_COUNTS,
    "changes": {"type": "array", "items": {"type": "object", "properties": {
        "time": TIME, "from": {"type": ["integer", "null"]}, "to": {"type": "integer"},
        "pid": {"type": "integer"}, "exitstatus": {"type": "integer"}}}}}}

CONFIG_DIFF = {"type": "object", "required": ["added", "changed", "removed"], "properties": {
    change: {"type": "array", "items": {"type": "string"}}
    for change in ("added", "changed", "removed")}}
CONFIG_RESULTS = {"type": "object", "required": ["results"], "properties": {"results": {
    "type": "array", "items": {"type": "object", "properties": {
        "group": {"type": "string"}, "change": {"type": "string"}, "ok": {"type": "boolean"},
        "error": {"type": ["string", "null"]}}}}}}

ALERT_INPUT = {"type": "object", "required": ["name", "kind"], "properties": {
    "name": NAME_PATTERN,
    "kind": {"enum": ["fatal", "crash", "flapping", "unreachable", "memory", "cpu"],
             "description": "memory, cpu: cesi-agentd nodes only (the answer's note names "
                            "the nodes of the scope that cannot be watched)"},
    "limit": {"type": ["number", "null"],
              "description": "memory: MB (with its children); cpu: percent of one core"},
    "duration_seconds": {"type": "integer", "minimum": 1, "maximum": 86400,
                         "description": "memory, cpu: above the limit this long"},
    "action": {"enum": ["none", "restart"],
               "description": "restart: memory, cpu rules restart the process, at most "
                              "once a window, recorded as the rule's doing"},
    "environment": {"type": ["string", "null"]}, "group": {"type": ["string", "null"]},
    "node": {"type": ["string", "null"]},
    "threshold": {"type": "integer", "minimum": 1, "maximum": 1000,
                  "description": "flapping: more starts than this in the window"},
    "window_minutes": {"type": "integer", "minimum": 1, "maximum": 10080,
                       "description": "also: at most one alert per subject per window"},
    "unreachable_seconds": {"type": "integer", "minimum": 1, "maximum": 86400},
    "webhook_url": {"type": ["string", "null"]},
    "webhook_secret": {"type": ["string", "null"], "writeOnly": True,
                       "description": "signs the body: X-Cesi-Signature: sha256=HMAC"},
    "email_to": {"type": ["string", "null"]}, "enabled": {"type": "boolean"},
    "notify": {"type": "array", "maxItems": 20, "items": {"type": "string"},
               "description": "Apprise URLs (slack://, workflows://, pagerduty://, "
                              "opsgenie://, discord://, tgram://, ntfy://, mailto://...); "
                              "sealed at rest, shown back as scheme and host only"}}}
ALERT = {"type": "object", "properties": {
    **{k: v for k, v in ALERT_INPUT["properties"].items()  # type: ignore[attr-defined]
       if k != "webhook_secret"},
    "id": {"type": "integer"}, "has_webhook_secret": {"type": "boolean"}}}
# (the webhook body: rule, kind, node, group, process, state, exitstatus, text, time,
# stderr_tail, link, resolved -- see docs/console.md)

ERRORS = {status: {"description": text, **_json(ERROR)} for status, text in (
    ("400", "bad input"), ("401", "not logged in / no token"), ("403", "role too low"),
    ("404", "not found (or outside your environments)"), ("409", "conflict"),
    ("502", "the node did not answer usably (state and reason in the message)"))}
CONFIRM_NEEDED = {"428": {"description": "confirm: send the name the answer's \"confirm\" "
                          "gives (it also lists \"touches\", processes per node, and "
                          "\"protected\" environments)", **_json(ERROR)}}


def _op(summary: str, ok: dict[str, Any], body: dict[str, Any] | None = None,
        status: str = "200", confirmed: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {
        status: {"description": "ok", **ok}, **ERRORS, **(CONFIRM_NEEDED if confirmed else {})}}
    if body is not None:  # a field not listed is refused (400), never ignored
        operation["requestBody"] = {"required": True, **_json(
            {**body, "additionalProperties": False})}
    return operation


CHART_PARAMETERS = [  # the history of a node or process as charts draw it
    {"name": "metric", "in": "query", "required": False,
     "schema": {"enum": ["cpu", "memory"]}},
    {"name": "range", "in": "query", "required": False, "schema": {"enum": ["1h", "24h", "7d"]}}]


def _managed(param: str, what: str, shown: dict[str, Any], given: dict[str, Any]
             ) -> dict[str, Any]:
    """An admin's resource by name: change it (PATCH, or PUT alike) or delete it."""
    return {"parameters": [_name(param)],
            "patch": _op(f"Change {what} (admin)", _json(shown), given),
            "put": _op("Same as PATCH", _json(shown), given),
            "delete": {"summary": f"Delete {what} (admin)",
                       "responses": {"204": {"description": "deleted"}, **ERRORS}}}


def _name(param: str) -> dict[str, Any]:
    return {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}


def _id(param: str) -> dict[str, Any]:
    """A row's id in the path: what a database integer can hold."""
    return {"name": param, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


def _query(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": schema or {"type": "string"}}


def listing(item: dict[str, Any]) -> dict[str, Any]:
    return _json({"type": "array", "items": item})


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "cesi-like console API", "version": __version__},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "session"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/v1/nodes": {
                "get": _op("Nodes in your scope with their state from the poller's snapshot",
                           listing(NODE_STATE)),
                "post": _op("Add a node (admin)", _json(NODE), NODE_INPUT, "201")},
            "/api/v1/nodes/{name}": _managed("name", "a node", NODE, NODE_INPUT),
            "/api/v1/processes": {
                "get": {**_op("Every process of every node in your scope (from the snapshot)",
                              listing(PROCESS)),
                        "parameters": [_query("node"), _query("environment"), _query("group"),
                                       _query("state"), _query("q")]}},
            "/api/v1/nodes/{name}/processes/{spec}/{action}": {
                "parameters": [_name("name"),
                               {**_name("spec"), "description": "group:name, group:* or *"},
                               {"name": "action", "in": "path", "required": True,
                                "schema": {"enum": ["start", "stop", "restart", "signal",
                                                    "clear-logs", "disable", "enable"]}}],
                "post": {**_op("Act on processes (operator); 409 when some target failed. "
                               "disable (stop, and keep stopped across reloads and restarts "
                               "of the node) and enable: cesi-agentd nodes, not *",
                               _json(RESULTS), confirmed=True),
                         "requestBody": {"required": False, **_json({
                             "type": "object", "additionalProperties": False,
                             "properties": {"signal": {"type": "string"},
                                            "confirm": CONFIRM}})}}},
            "/api/v1/nodes/{name}/processes/{spec}/log": {
                "parameters": [_name("name"), _name("spec")],
                "get": {**_op("Tail a log by offset (follow with the returned offset)",
                              _json(LOG)),
                        "parameters": [_query("stream", {"enum": ["stdout", "stderr"]}),
                                       _query("offset", {"type": "integer", "minimum": 0}),
                                       _query("length", {"type": "integer", "minimum": 1,
                                                         "maximum": 1048576})]}},
            "/api/v1/nodes/{name}/processes/{spec}/log/download": {
                "parameters": [_name("name"), _name("spec")],
                "get": {"summary": "The whole current log file, streamed",
                        "parameters": [_query("stream", {"enum": ["stdout", "stderr"]})],
                        "responses": {"200": {"description": "the file", "content": {
                            "text/plain": {"schema": {"type": "string"}}}}, **ERRORS}}},
            "/api/v1/nodes/{name}/log": {
                "parameters": [_name("name")],
                "get": {**_op("The end of the node's main log (admin; re-read to follow)",
                              _json(MAIN_LOG)),
                        "parameters": [_query("length", {"type": "integer", "minimum": 1,
                                                         "maximum": 1048576})]}},
            "/api/v1/nodes/{name}/stats": {
                "parameters": [_name("name")],
                "get": _op("CPU time and memory of each process, live (cesi-agentd; a "
                           "supervisord answers available: false). CPU use is the "
                           "difference of two answers' cpu_seconds over that of their now",
                           _json(STATS))},
            "/api/v1/nodes/{name}/history": {
                "parameters": [_name("name"), *CHART_PARAMETERS],
                "get": _op("How long the node has been in its state, its share of time "
                           "online over 1h/24h/7d, its recent state changes; with metric "
                           "and range (cesi-agentd nodes): the sum of its processes' stored "
                           "samples over the range and its state changes, for the charts",
                           _json(NODE_HISTORY))},
            "/api/v1/nodes/{name}/processes/{spec}/history": {
                "parameters": [_name("name"), {**_name("spec"), "description": "group:name"},
                               *CHART_PARAMETERS],
                "get": _op("Starts, crashes and FATALs over 1h/24h/7d and the recent "
                           "state changes of one process; with metric and range (cesi-agentd "
                           "nodes): the stored CPU (% of a core) or memory (MB) samples over "
                           "the range, [[epoch seconds, value]], and the state changes of the "
                           "range for a timeline, [[epoch seconds, state name, exit status]]",
                           _json({"type": "object"}))},
            "/api/v1/nodes/{name}/config": {
                "parameters": [_name("name")],
                "get": _op("The groups the node's config now adds, changes and removes, as "
                           "supervisorctl reread shows them (operator; applies nothing)",
                           _json(CONFIG_DIFF))},
            "/api/v1/nodes/{name}/config/apply": {
                "parameters": [_name("name")],
                "post": {**_op("Apply them as supervisorctl update does, all or only "
                               "`groups` (operator); 409 when some failed",
                               _json(CONFIG_RESULTS)),
                         "requestBody": {"required": False, **_json({
                             "type": "object", "additionalProperties": False,
                             "properties": {"groups": {
                                 "type": "array", "minItems": 1,
                                 "items": {"type": "string"}}}})}}},
            "/api/v1/environments": {
                "get": _op("Environments in your scope", listing(ENVIRONMENT)),
                "post": _op("Add an environment (admin)", _json(ENVIRONMENT), ENVIRONMENT_INPUT,
                            "201")},
            "/api/v1/environments/{name}": _managed("name", "an environment", ENVIRONMENT,
                                                    ENVIRONMENT_INPUT),
            "/api/v1/tokens": {
                "get": {**_op("Your API tokens (an admin's ?all=1: everyone's)",
                              listing(TOKEN)),
                        "parameters": [_query("all", {"enum": ["0", "1", "true"]})]},
                "post": _op("Make a token; the answer holds its secret, shown only this once",
                            _json(TOKEN), TOKEN_INPUT, "201")},
            "/api/v1/tokens/{token_id}": {
                "parameters": [{"name": "token_id", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1}}],
                "delete": {"summary": "Revoke a token (yours; an admin: anyone's)",
                           "responses": {"204": {"description": "revoked"}, **ERRORS}}},
            "/api/v1/rollouts": {
                "post": _op("Queue a rolling restart of a group across an environment "
                            "(operator): the environment's nodes that run the group, "
                            "batch_size at a time, stopping at the first failure unless "
                            "keep_going", _json(JOB), ROLLOUT_INPUT, "202", confirmed=True)},
            "/api/v1/bulk": {
                "post": _op("Queue start/stop/restart/signal on many nodes at once, in "
                            "parallel (operator): explicit targets, or one spec on an "
                            "environment's nodes that have it or on named nodes",
                            _json(JOB), BULK_INPUT, "202", confirmed=True)},
            "/api/v1/jobs": {
                "get": _op("Your jobs, newest first (an admin: everyone's)", listing(JOB))},
            "/api/v1/jobs/{job_id}": {
                "parameters": [_id("job_id")],
                "get": _op("A job and the state of each of its steps", _json(JOB))},
            "/api/v1/jobs/{job_id}/cancel": {
                "parameters": [_id("job_id")],
                "post": _op("Cancel before the next batch (operator)", _json(JOB))},
            "/api/v1/alerts": {
                "get": _op("Alert rules (admin)", listing(ALERT)),
                "post": _op("Add an alert rule (admin)", _json(ALERT), ALERT_INPUT, "201")},
            "/api/v1/alerts/{rule_id}": {
                "parameters": [_id("rule_id")],
                "patch": _op("Change any field of an alert rule (admin): what is given is "
                             "checked as when the rule was made, the rest stays; "
                             "{\"enabled\": false} turns it off", _json(ALERT),
                             {**ALERT_INPUT, "required": []}),
                "delete": {"summary": "Delete an alert rule (admin)",
                           "responses": {"204": {"description": "deleted"}, **ERRORS}}},
            "/api/v1/problems": {
                "get": _op("What is firing now on nodes in your scope, newest first: rule, "
                           "node, process, since, who acknowledged it, and whether a silence "
                           "or maintenance keeps it quiet", listing({"type": "object"}))},
            "/api/v1/problems/{firing_id}/ack": {
                "parameters": [_id("firing_id")],
                "post": {**_op("Acknowledge an open problem (operator), with a note",
                               _json({"type": "object"})),
                         "requestBody": {"required": False, **_json({
                             "type": "object", "additionalProperties": False,
                             "properties": {"note": {"type": "string"}}})}}},
            "/api/v1/silences": {
                "get": _op("The silences in force", listing({"type": "object"})),
                "post": _op("Silence a node, environment, group or rule (its id) for some "
                            "minutes, with a reason (operator; a rule: admin)",
                            _json({"type": "object"}), {
                                "type": "object",
                                "required": ["kind", "target", "minutes", "reason"],
                                "properties": {
                                    "kind": {"enum": ["node", "environment", "group", "rule"]},
                                    "target": {"type": "string"},
                                    "minutes": {"type": "integer", "minimum": 1,
                                                "maximum": 129600},
                                    "reason": {"type": "string"}}}, "201")},
            "/api/v1/silences/{silence_id}": {
                "parameters": [_id("silence_id")],
                "delete": {"summary": "End a silence early (operator)",
                           "responses": {"204": {"description": "ended"}, **ERRORS}}},
            "/api/v1/nodes/{name}/maintenance": {
                "parameters": [_name("name")],
                "put": _op("Put a node in maintenance (no alerts, rolling restarts pass it) or "
                           "take it out (operator)", _json({"type": "object"}), {
                               "type": "object", "required": ["on"],
                               "properties": {"on": {"type": "boolean"},
                                              "note": {"type": "string"}}})},
            "/api/v1/alerts/{rule_id}/preview": {
                "parameters": [_id("rule_id")],
                "get": _op("What the rule watches now (admin): the nodes of its scope, their "
                           "processes in it, and those already in a state it alerts on",
                           _json({"type": "object", "properties": {
                               "nodes": {"type": "array", "items": {"type": "string"}},
                               "processes": {"type": "array", "items": {"type": "string"}},
                               "now": {"type": "array", "items": {"type": "string"}}}}))},
            "/api/v1/alerts/{rule_id}/test": {
                "parameters": [_id("rule_id")],
                "post": _op("Deliver a test alert of the rule now (admin): each channel's "
                            "outcome", _json({"type": "object", "additionalProperties": {
                                "type": "string"}}))},
            "/api/v1/users": {
                "get": _op("Every user (admin)", listing(USER)),
                "post": _op("Add a user (admin)", _json(USER), USER_INPUT, "201")},
            "/api/v1/users/{username}": _managed("username", "a user", USER, USER_INPUT),
        },
    }


def _schema_text(schema: dict[str, Any]) -> str:
    """A schema in a few words: `integer (1 to 3650)`, `one of a, b`, `array of string`
    (with `|` escaped: it lands in a Markdown table)."""
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "object")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if kind == "array":
        text = f"array of {_schema_text(schema.get('items', {}))}"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        text += f" ({'' if low is None else low} to {'' if high is None else high})"
    if "maxLength" in schema:
        text += f", at most {schema['maxLength']} characters"
    if "pattern" in schema:
        text += f", matching `{schema['pattern']}`"
    return text.replace("|", "\\|")


def markdown(doc: dict[str, Any]) -> str:
    """docs/api.md, made from the OpenAPI document (a test checks the file is up to date)."""
    lines = [f"# {doc['info']['title']}", "",
             "Generated from `GET /api/v1/openapi.json` by",
             "`python -m cesi_like.console.api`; a test fails when this file and the",
             "document differ. Every call needs a session",
             "(with an `X-CSRFToken` header on writes) or `Authorization: Bearer <token>`;",
             "every error is JSON: `{\"error\": \"...\"}`.", ""]
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method in ("get", "post", "put", "patch", "delete"):
            operation = item.get(method)
            if operation is None:
                continue
            lines += [f"## `{method.upper()} {path}`", "", operation.get("summary", ""), ""]
            parameters = shared + operation.get("parameters", [])
            if parameters:
                lines += ["| parameter | in | value |", "|---|---|---|"]
                lines += [f"| `{p['name']}` | {p['in']} | {_schema_text(p.get('schema', {}))}"
                          f"{' — ' + p['description'] if p.get('description') else ''} |"
                          for p in parameters]
                lines.append("")
            body = operation.get("requestBody", {}).get("content", {}).get(
                "application/json", {}).get("schema")
            if body:
                lines += ["| body field | value |", "|---|---|"]
                lines += [f"| `{name}` | {_schema_text(field)} |"
                          for name, field in body.get("properties", {}).items()]
                lines.append("")
            answers = ", ".join(f"{status} {answer['description']}"
                                for status, answer in operation["responses"].items())
            lines += [f"Answers: {answers}.", ""]
    return "\n".join(lines)

