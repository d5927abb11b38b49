"""/api/v1 with bearer tokens: nodes, environments, users, process actions, OpenAPI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.console import token_for
from tests.support.daemons import BASE
from tests.support.procfs import alive
from tests.support.waiting import wait_for


@pytest.fixture
def admin(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(app, 'admin')}"}


def test_bad_token_is_401(client: FlaskClient) -> None:
    response = client.get("/api/v1/nodes", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.is_json


def test_node_crud(client: FlaskClient, admin: dict[str, str]) -> None:
    created = client.post("/api/v1/nodes", headers=admin, json={
        "name": "api1", "host": "127.0.0.1", "port": 1, "username": "u", "password": "pw-123",
        "environments": ["prod"]})
    assert created.status_code == 201
    body = created.get_json()
    assert body["url"] == "http://127.0.0.1:1" and body["has_password"] is True
    assert "password" not in body and "pw-123" not in created.get_data(as_text=True)
    listed = {n["name"]: n for n in client.get("/api/v1/nodes", headers=admin).get_json()}
    assert listed["api1"]["state"] == "unreachable" and listed["api1"]["reason"]
    assert client.post("/api/v1/nodes", headers=admin, json={"name": "api1", "host": "x"}
                       ).status_code == 409
    bad = client.post("/api/v1/nodes", headers=admin, json={"name": "n2", "url": "ftp://x"})
    assert bad.status_code == 400 and "url must start" in bad.get_json()["error"]
    bad = client.post("/api/v1/nodes", headers=admin, json={"name": "n3", "host": "h",
                                                             "environments": ["nope"]})
    assert bad.get_json() == {"error": "unknown environments: nope"}
    patched = client.patch("/api/v1/nodes/api1", headers=admin, json={"enabled": False,
                                                                     "environments": []})
    assert patched.get_json()["enabled"] is False
    assert client.delete("/api/v1/nodes/api1", headers=admin).status_code == 204
    assert client.delete("/api/v1/nodes/api1", headers=admin).status_code == 404


def test_environments_and_users(client: FlaskClient, admin: dict[str, str]) -> None:
    assert client.post("/api/v1/environments", headers=admin, json={
        "name": "qa", "nodes": ["web1"]}).status_code == 201
    envs = {e["name"]: e for e in client.get("/api/v1/environments", headers=admin).get_json()}
    assert envs["qa"]["nodes"] == ["web1"]
    created = client.post("/api/v1/users", headers=admin, json={
        "username": "bot", "password": "bot password 1", "role": "operator",
        "environments": ["qa"]})
    assert created.status_code == 201 and created.get_json()["environments"] == ["qa"]
    assert client.post("/api/v1/users", headers=admin, json={
        "username": "weak", "password": "short"}).status_code == 400
    last = client.patch("/api/v1/users/admin", headers=admin, json={"role": "viewer"})
    assert last.status_code == 409 and "last active admin" in last.get_json()["error"]
    assert client.delete("/api/v1/users/bot", headers=admin).status_code == 204
    users = [u["username"] for u in client.get("/api/v1/users", headers=admin).get_json()]
    assert "bot" not in users and "admin" in users


def test_malformed_json_is_a_json_400(client: FlaskClient, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/nodes", headers=admin, data="{not json",
                           content_type="application/json")
    assert response.status_code == 400 and "JSON object" in response.get_json()["error"]
    assert client.get("/api/v1/nope", headers=admin).get_json() is not None


def test_openapi_lists_every_api_route(app: Flask, client: FlaskClient,
                                       admin: dict[str, str]) -> None:
    document = client.get("/api/v1/openapi.json", headers=admin).get_json()
    assert document["openapi"].startswith("3.")
    documented = {path.replace("{", "<").replace("}", ">") for path in document["paths"]}
    routes = {re.sub(r"<(?:[^<>]*:)?(\w+)>", r"<\1>", rule.rule)  # converters aside
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/") and not rule.rule.endswith("openapi.json")}
    assert routes == documented


def test_a_new_node_is_polled_at_once(app: Flask, client: FlaskClient,
                                      admin: dict[str, str], tmp_path: Path) -> None:
    """Adding a node shows its real state right away, not after the next poll."""
    conf = tmp_path / "agent.conf"
    conf.write_text(BASE.format(loglevel="info") + (
        "[program:web]\ncommand=sleep 100\nstartsecs=0\nautostart=false\n"))
    agent = subprocess.Popen([sys.executable, "-m", "cesi_like.agent.main", "-c", str(conf),
                              "-n"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (tmp_path / "daemon.sock").exists())
        assert client.post("/api/v1/nodes", headers=admin, json={
            "name": "agent1", "url": f"unix://{tmp_path}/daemon.sock",
            "environments": ["prod"]}).status_code == 201
        node = {n["name"]: n for n in client.get("/api/v1/nodes", headers=admin).get_json()}
        assert node["agent1"]["state"] == "online" and node["agent1"]["version"] == "4.3.0"
        assert node["agent1"]["process_count"] == 1
        started = client.post("/api/v1/nodes/agent1/processes/web:web/start", headers=admin)
        assert started.get_json() == {"results": [{"name": "web:web", "ok": True,
                                                   "error": None}]}
    finally:
        agent.terminate()
        agent.wait(30)
    assert not alive(agent.pid)


def test_action_on_a_hung_node_fails_within_the_node_timeout(
    app: Flask, client: FlaskClient, admin: dict[str, str]
) -> None:
    """A node that accepts connections but never answers (like a SIGSTOPped supervisord)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        client.post("/api/v1/nodes", headers=admin, json={
            "name": "frozen", "host": "127.0.0.1", "port": port})
        response = client.post("/api/v1/nodes/frozen/processes/web:*/start", headers=admin)
        # answered by the node_timeout probe, before any long start call was made
        assert response.status_code == 502 and "hung" in response.get_json()["error"]
        nodes = {n["name"]: n for n in client.get("/api/v1/nodes", headers=admin).get_json()}
        assert nodes["frozen"]["state"] == "hung"
    finally:
        listener.close()


@pytest.mark.parametrize("body,why", [
    ({"name": "", "host": "h"}, "name"),
    ({"name": "x" * 100_000, "host": "h"}, "name"),
    ({"name": "a\x00b", "host": "h"}, "control characters"),
    ({"name": "bad name!", "host": "h"}, "name"),
    ({"name": "n1", "host": "h", "port": -1}, "not a valid port"),
    ({"name": "n1", "host": "h", "port": 99999999}, "not a valid port"),
    ({"name": "n1", "host": "h", "port": [1]}, "not a valid port"),
    ({"name": "n1", "url": "http://user:pw@h:9001"}, "credentials"),
    ({"name": "\ud800", "host": "h"}, "name"),
    ({"name": "n1", "host": "h", "notes": "\ud800"}, "valid Unicode"),
])
def test_node_input_is_validated(client: FlaskClient, admin: dict[str, str],
                                 body: dict[str, object], why: str) -> None:
    """#8.6 and #8.7: the API checks what the form checks; absurd input is a clear 400."""
    import json

    response = client.post("/api/v1/nodes", headers=admin, content_type="application/json",
                           data=json.dumps(body))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert why in response.get_json()["error"]
    assert client.get("/api/v1/nodes", headers=admin).get_json()[-1]["name"] != "n1"


def test_absurd_requests_are_4xx(client: FlaskClient, admin: dict[str, str]) -> None:
    from tests.support.console import login

    deep = client.post("/api/v1/nodes", headers=admin, content_type="application/json",
                       data="[" * 50_000)
    assert deep.status_code == 400 and deep.is_json
    role = client.post("/api/v1/users", headers=admin, json={
        "username": "r1", "password": "long enough 1", "role": ["admin"]})
    assert role.status_code == 400 and "role" in role.get_json()["error"]
    login(client)
    assert client.get(f"/admin/users/{2**64}").status_code == 404
    assert client.get(f"/admin/nodes/{2**63}").status_code == 404
    assert client.get(f"/activity/?page={2**70}").status_code == 200
    assert client.get("/login?next=/%0d%0aSet-Cookie:x=1").status_code == 302


def test_docs_api_md_is_the_openapi_document() -> None:
    """docs/api.md is generated from the OpenAPI document: regenerate it when the API
    changes (python -m cesi_like.console.api > docs/api.md)."""
    import subprocess
    import sys
    from pathlib import Path

    committed = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    made = subprocess.run([sys.executable, "-m", "cesi_like.console.api"], capture_output=True,
                          text=True, check=True)
    assert made.stdout == committed and made.stderr == ""
