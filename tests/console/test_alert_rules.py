"""#20.2 rules people can manage: every field changes through PATCH and the rule's page,
checked as when it was made (a refusal changes nothing), scopes name what exists (groups as
the nodes run them), sealed values are never shown and kept unless replaced or removed, and
a rule shows what it watches now."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import ActivityLog, AlertRule
from tests.console.test_confirm import snapshot
from tests.support.console import csrf_from, token_for


def api(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(app, 'admin')}"}


def make_rule(client: FlaskClient, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    answer = client.post("/api/v1/alerts", headers=headers, json={
        "name": "web-fatal", "kind": "fatal", "webhook_url": "http://127.0.0.1:9/hook",
        "webhook_secret": "first secret", "notify": ["json://127.0.0.1:9/a"]})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def test_every_field_changes_through_patch_and_a_refusal_changes_nothing(
        app: Flask, client: FlaskClient) -> None:
    snapshot(app, "web1", {"web": 2})
    headers = api(app)
    created = make_rule(client, headers)
    url = f"/api/v1/alerts/{created['id']}"
    for body, error in (({"node": "ghost"}, "there is no node 'ghost'"),
                        ({"group": "nosuch"}, "no node runs a group 'nosuch'"),
                        ({"environment": "prdo"}, "there is no environment 'prdo'"),
                        ({"threshold": 0}, "threshold"),
                        ({"webhook_url": None, "notify": []}, "give webhook_url, email_to"),
                        ({"kind": "crash", "colour": "red"}, "unknown fields")):
        answer = client.patch(url, headers=headers, json=body)
        assert answer.status_code == 400 and error in answer.get_json()["error"], body
    assert client.get("/api/v1/alerts", headers=headers).get_json() == [created]

    changed = client.patch(url, headers=headers, json={
        "name": "web-flaps", "kind": "flapping", "threshold": 5, "window_minutes": 30,
        "environment": "prod", "node": "web1", "group": "web", "webhook_secret": "",
        "notify": ["ntfy://127.0.0.1:9/ops", "json://127.0.0.1:9/b"], "enabled": False})
    assert changed.status_code == 200, changed.get_json()
    rule = changed.get_json()
    assert (rule["name"], rule["kind"], rule["threshold"], rule["window_minutes"]) == (
        "web-flaps", "flapping", 5, 30)
    assert (rule["environment"], rule["node"], rule["group"]) == ("prod", "web1", "web")
    assert rule["has_webhook_secret"] is False and rule["enabled"] is False
    assert rule["notify"] == ["ntfy://127.0.0.1", "json://127.0.0.1"]
    with database.standalone(app) as db:
        entry = db.scalars(select(ActivityLog).where(ActivityLog.action == "alert.update")
                           ).one()
        assert "kind" in entry.detail and "notify" in entry.detail and "name" in entry.detail


def test_a_rule_shows_what_it_watches_now(app: Flask, client: FlaskClient) -> None:
    snapshot(app, "web1", {"web": 2, "api": 1})
    snapshot(app, "dev1", {"web": 1})
    headers = api(app)
    created = make_rule(client, headers)
    url = f"/api/v1/alerts/{created['id']}"
    client.patch(url, headers=headers, json={"group": "web", "environment": "prod"})
    watches = client.get(f"{url}/preview", headers=headers).get_json()
    assert watches == {"nodes": ["web1"], "processes": ["web1/web:web_0", "web1/web:web_1"],
                       "now": []}
    client.patch(url, headers=headers, json={"kind": "unreachable", "group": None,
                                             "environment": None})
    watches = client.get(f"{url}/preview", headers=headers).get_json()
    assert watches["nodes"] == ["dev1", "web1"] and watches["processes"] == []


def test_the_rules_page_changes_fields_and_keeps_what_is_sealed(
        app: Flask, client: FlaskClient, login_as) -> None:  # type: ignore[no-untyped-def]
    snapshot(app, "web1", {"web": 2})
    created = make_rule(client, api(app))
    login_as("admin")
    page = client.get(f"/admin/alerts/{created['id']}").get_data(as_text=True)
    assert "first secret" not in page and "127.0.0.1:9/a" not in page  # sealed: not shown
    assert "now: json://127.0.0.1" in page
    assert '<option value="web">web</option>' in page  # groups as the nodes run them
    assert "2 processes on 2 nodes" in page
    form = {"csrf_token": csrf_from(page), "name": "web-fatal", "kind": "crash",
            "environment": "prod", "group": "web", "node": "", "threshold": "3",
            "window_minutes": "10", "unreachable_seconds": "60",
            "webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "", "email_to": "",
            "notify": "", "enabled": "y", "duration_seconds": "60", "action": "none"}
    assert client.post(f"/admin/alerts/{created['id']}", data=form).status_code == 302
    with database.standalone(app) as db:
        rule = db.get(AlertRule, created["id"])
        assert rule is not None
        assert (rule.kind, rule.environment, rule.group) == ("crash", "prod", "web")
        assert rule.webhook_secret is not None and rule.notify is not None  # kept
    answer = client.post(f"/admin/alerts/{created['id']}", data={
        **form, "remove_secret": "y", "remove_notify": "y"})
    assert answer.status_code == 302
    with database.standalone(app) as db:
        rule = db.get(AlertRule, created["id"])
        assert rule is not None and rule.webhook_secret is None and rule.notify is None
    refused = client.post(f"/admin/alerts/{created['id']}", data={**form, "webhook_url": ""})
    assert "give webhook_url, email_to or notify" in refused.get_data(as_text=True)
