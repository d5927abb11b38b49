"""Alembic migrations: from empty, down and up again, and in step with the models, on SQLite and
(where a server is available) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect

from cesi_like.console.context import console
from cesi_like.console.storage import db as database
from cesi_like.console.storage.models import Base
from tests.support.postgres import fresh_database

TABLES = {"users", "environments", "nodes", "node_environments", "user_environments",
          "activity_log", "api_tokens", "settings", "alembic_version", "node_status",
          "process_events", "leases", "login_limits", "jobs", "node_events", "alert_rules",
          "alert_firings", "silences", "process_samples",
          "process_series"}

@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with fresh_database() as url:
        yield url


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
    from cesi_like.console.app import create_app
    from cesi_like.console.settings import Settings

    # a node key of its own: on PostgreSQL the key file would go to the package's instance
    # folder, which is the checkout itself
    key = Fernet.generate_key().decode()
    app = create_app({"CESI_SETTINGS": Settings(database=url, admin_password="pw-for-test",
                                                node_key=key)})
    try:
        from tests.support.console import login

        login(app.test_client(), "admin", "pw-for-test")
    finally:
        console(app).engine.dispose()
