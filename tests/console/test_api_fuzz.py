"""schemathesis generates requests from /api/v1/openapi.json (valid and invalid, with an admin
token) against the app with real nodes behind it: no answer may be a 5xx, and every answer must
match the documented status codes, content types and schemas."""

from __future__ import annotations

from collections.abc import Iterator

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

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
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
    for operation in operations:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS)

        fuzz()
