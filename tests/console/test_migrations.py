"""Alembic migrations: from empty, down and up again, and in step with the models, on SQLite and
(where a server is available) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from cesi_like.console import db as database
from cesi_like.console.models import Base

TABLES = {"users", "environments", "nodes", "node_environments", "user_environments",
          "activity_log", "api_tokens", "settings", "alembic_version", "node_status",
          "process_events", "leases", "login_limits"}

POSTGRES = os.environ.get("CESI_LIKE_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    if not POSTGRES:
        pytest.skip("PostgreSQL test skipped: set CESI_LIKE_TEST_POSTGRES to a server URL "
                    "(.ci/run starts one)")
    name = f"cesi_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_from_empty(url: str) -> None:
    database.upgrade(url)
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        assert database.current_revision(engine) == database.head_revision()
    finally:
        engine.dispose()


def test_downgrade_upgrade_round_trip(url: str) -> None:
    database.upgrade(url)
    database.downgrade(url, "base")
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        database.upgrade(url)
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_models_match_the_migrations(url: str) -> None:
    database.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_console_runs_on_the_database(url: str) -> None:
    from cesi_like.console import create_app
    from cesi_like.console.settings import Settings

    app = create_app({"CESI_SETTINGS": Settings(database=url, admin_password="pw-for-test")})
    try:
        from .conftest import login

        login(app.test_client(), "admin", "pw-for-test")
    finally:
        app.extensions["cesi_engine"].dispose()
