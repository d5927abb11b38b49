"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from .. import __version__


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
NODE = {"type": "object", "properties": {
    "name": {"type": "string"}, "url": {"type": "string"},
    "username": {"type": ["string", "null"]}, "has_password": {"type": "boolean"},
    "enabled": {"type": "boolean"}, "notes": {"type": "string"},
    "environments": {"type": "array", "items": {"type": "string"}},
    "state": {"enum": ["online", "unreachable", "auth-failed", "no-rpc-interface", "hung",
                       "error", "disabled"]},
    "reason": {"type": "string"}, "version": {"type": ["string", "null"]}}}
NODE_INPUT = {"type": "object", "properties": {
    "name": {"type": "string"}, "url": {"type": "string"}, "host": {"type": "string"},
    "port": {"type": ["integer", "string"]}, "username": {"type": "string"},
    "password": {"type": "string", "writeOnly": True}, "enabled": {"type": "boolean"},
    "notes": {"type": "string"}, "environments": {"type": "array", "items": {"type": "string"}}}}
ENVIRONMENT = {"type": "object", "properties": {
    "name": {"type": "string"}, "description": {"type": "string"},
    "nodes": {"type": "array", "items": {"type": "string"}}}}
USER = {"type": "object", "properties": {
    "username": {"type": "string"}, "role": {"enum": ["admin", "operator", "viewer"]},
    "active": {"type": "boolean"}, "environments": {"type": "array", "items": {"type": "string"}},
    "created": {"type": "string"}, "last_login": {"type": ["string", "null"]}}}
USER_INPUT = {"type": "object", "properties": {
    "username": {"type": "string"}, "password": {"type": "string", "writeOnly": True},
    "role": {"enum": ["admin", "operator", "viewer"]}, "active": {"type": "boolean"},
    "environments": {"type": "array", "items": {"type": "string"}}}}

ERRORS = {status: {"description": text, **_json(ERROR)} for status, text in (
    ("400", "bad input"), ("401", "not logged in / no token"), ("403", "role too low"),
    ("404", "not found (or outside your environments)"), ("409", "conflict"))}


def _op(summary: str, ok: dict[str, Any], body: dict[str, Any] | None = None,
        status: str = "200") -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary,
                                 "responses": {status: {"description": "ok", **ok}, **ERRORS}}
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    return operation


def _name(param: str) -> dict[str, Any]:
    return {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}


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
                "get": _op("Nodes in your scope, each probed live", listing(NODE)),
                "post": _op("Add a node (admin)", _json(NODE), NODE_INPUT, "201")},
            "/api/v1/nodes/{name}": {
                "parameters": [_name("name")],
                "patch": _op("Change a node (admin)", _json(NODE), NODE_INPUT),
                "delete": {"summary": "Delete a node (admin)",
                           "responses": {"204": {"description": "deleted"}, **ERRORS}}},
            "/api/v1/nodes/{name}/processes/{process}/{action}": {
                "parameters": [_name("name"), _name("process"),
                               {"name": "action", "in": "path", "required": True,
                                "schema": {"enum": ["start", "stop", "restart"]}}],
                "post": _op("Start, stop or restart group:name or group:* (operator)",
                            _json({"type": "object"}))},
            "/api/v1/environments": {
                "get": _op("Environments in your scope", listing(ENVIRONMENT)),
                "post": _op("Add an environment (admin)", _json(ENVIRONMENT), ENVIRONMENT,
                            "201")},
            "/api/v1/environments/{name}": {
                "parameters": [_name("name")],
                "patch": _op("Change an environment (admin)", _json(ENVIRONMENT), ENVIRONMENT),
                "delete": {"summary": "Delete an environment (admin)",
                           "responses": {"204": {"description": "deleted"}, **ERRORS}}},
            "/api/v1/users": {
                "get": _op("Every user (admin)", listing(USER)),
                "post": _op("Add a user (admin)", _json(USER), USER_INPUT, "201")},
            "/api/v1/users/{username}": {
                "parameters": [_name("username")],
                "patch": _op("Change a user (admin)", _json(USER), USER_INPUT),
                "delete": {"summary": "Delete a user (admin)",
                           "responses": {"204": {"description": "deleted"}, **ERRORS}}},
        },
    }
