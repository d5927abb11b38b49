"""Database plumbing: one engine per app, one session per request, Alembic for the schema.

The migrations live in `cesi_like/console/storage/migrations` (the top-level `migrations/` of
the repository points there), so an installed package can upgrade its own database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")  # cascades, as PostgreSQL does
            cursor.execute("PRAGMA busy_timeout=5000")  # several gunicorn workers share it
            if url != "sqlite://" and ":memory:" not in url:
                # readers never block the poller's writes, nor it theirs
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)


def session() -> Session:
    """The request's session (created on first use, closed at teardown)."""
    from ..context import console

    if "db_session" not in g:
        g.db_session = console().sessions()
    db: Session = g.db_session
    return db


@contextmanager
def standalone(app: Flask) -> Iterator[Session]:
    """A session outside any request (CLI, start-up)."""
    from ..context import console

    db: Session = console(app).sessions()
    try:
        yield db
    finally:
        db.close()


def _close_session(exception: BaseException | None) -> None:
    db = g.pop("db_session", None)
    if db is not None:
        if exception is not None:
            db.rollback()
        db.close()


def alembic_config(url: str) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision`."""
    from alembic import command

    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url[len("sqlite:///"):])), exist_ok=True)
    command.upgrade(alembic_config(url), revision)  # type: ignore[arg-type]


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)  # type: ignore[arg-type]


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision


def head_revision() -> str:
    """The newest migration this package ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head
