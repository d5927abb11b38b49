"""#10.7 per-process CPU and memory through the console: live from cesi-agentd, "n/a" from
supervisord 4.3 instead of a failure, 502 from a node that is down, nothing outside a
user's environments."""

from __future__ import annotations

from flask import Flask

from tests.support.console import token_for

from .test_metrics import metrics_app, nodes, read_only_token  # the fixtures, shared

__all__ = ["metrics_app", "nodes"]


def stats(app: Flask, node: str, token: str) -> tuple[int, dict[str, object]]:
    answer = app.test_client().get(f"/api/v1/nodes/{node}/stats",
                                   headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.get_json()


def test_stats_from_each_kind_of_node(metrics_app: Flask) -> None:
    token = token_for(metrics_app, "admin")
    status, agent = stats(metrics_app, "agent", token)
    assert status == 200 and agent["available"] is True
    web = next(p for p in agent["processes"] if p["name"] == "web")  # type: ignore[attr-defined]
    assert web["rss_kb"] > 0 and web["processes"] == 1 and web["cpu_seconds"] >= 0
    status, sup = stats(metrics_app, "sup", token)
    assert status == 200 and sup == {"available": False, "reason": sup["reason"]}
    assert str(sup["reason"]).startswith("n/a")
    status, down = stats(metrics_app, "down", token)
    assert status == 502 and "unreachable" in str(down["error"])
    scoped = read_only_token(metrics_app, "devviewer")
    assert stats(metrics_app, "agent", scoped)[0] == 404
