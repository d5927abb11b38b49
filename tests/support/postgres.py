"""A fresh database on the throwaway PostgreSQL server that `.ci/run` starts
(`CESI_LIKE_TEST_POSTGRES`), for the tests that need the real server."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SERVER = os.environ.get("CESI_LIKE_TEST_POSTGRES")


def require_server() -> str:
    if not SERVER:
        pytest.skip("PostgreSQL test skipped: set CESI_LIKE_TEST_POSTGRES to a server URL "
                    "(.ci/run starts one)")
    return SERVER


@contextlib.contextmanager
def fresh_database(owner: str | None = None, password: str | None = None) -> Iterator[str]:
    """Create an empty database (owned by a login role `owner`, made if missing, when given)
    and yield its URL; drop it afterwards, closing whatever is still connected."""
    server = require_server()
    name = f"cesi_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    url = make_url(server).set(database=name)
    try:
        with admin.connect() as connection:
            if owner is not None:
                exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"),
                                            {"n": owner}).first()
                verb = "ALTER" if exists else "CREATE"
                connection.execute(text(f'{verb} ROLE "{owner}" LOGIN PASSWORD '
                                        f"'{password or ''}'"))
                url = url.set(username=owner, password=password)
            connection.execute(text(f'CREATE DATABASE "{name}"'
                                    + (f' OWNER "{owner}"' if owner else "")))
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
