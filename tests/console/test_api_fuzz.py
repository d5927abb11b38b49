"""schemathesis generates requests from /api/v1/openapi.json (valid and invalid, with an admin
token) against the app with real nodes behind it: no answer may be a 5xx, and every answer must
match the documented status codes, content types and schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cesi_like.console.app import make_poller
from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import Environment, Node
from tests.support.console import make_app, token_for
from tests.support.daemons import daemons
from tests.support.hostile import hostile_node


def not_the_consoles_error(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """No 5xx but 502: the answer for a node that cannot be reached or answers badly, which
    the fuzzer meets once it has made nodes of its own (hosts that do not resolve) and acts
    on them. Documented on the node operations (status_code_conformance checks that)."""
    if response.status_code == 502:
        return None
    return not_a_server_error(ctx, response, case)  # type: ignore[no-any-return]


CHECKS = [not_the_consoles_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with daemons(tmp) as start, hostile_node("xss") as hostile:
        agent = start("[program:web]\ncommand=sleep 1000\nstartsecs=0\n", name="agent")
        app = make_app(tmp / "console", CESI_ACTION_TIMEOUT=5.0)
        with database.standalone(app) as db:
            prod = Environment(name="prod", description="")
            db.add_all([prod, Node(name="agent", url=agent.url, environments=[prod]),
                        Node(name="evil", url=hostile)])
            db.commit()
        make_poller(app).poll_now()
        yield app, token_for(app, "admin")
        console(app).engine.dispose()


def test_api_answers_as_documented(fuzzed: tuple[Flask, str]) -> None:
    app, token = fuzzed
    auth = {"Authorization": f"Bearer {token}"}
    # the document is behind the login like every other API call
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    statuses: list[int] = []
    for operation in operations:
        # a token of its own: DELETE /tokens/{id} may revoke the one before, and everything
        # after would be a documented 401 that tests nothing
        fuzz(operation, {"Authorization": f"Bearer {token_for(app, 'admin')}"}, statuses)
    assert statuses.count(401) < len(statuses) / 10, statuses


def fuzz(operation: Any, headers: dict[str, str], statuses: list[int]) -> None:
    """25 generated requests to `operation`, each answer checked; their statuses noted."""

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

    run()
