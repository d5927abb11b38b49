"""What every test gets: a migrated template database for the session, a cheap password
hash, and the `start_daemon` fixture; the helpers live in tests/support."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cesi_like.console.services import credentials
from tests.support import console, npm
from tests.support.daemons import start_daemon

__all__ = ["start_daemon"]

# scrypt costs 80 ms a hash, and the suite makes thousands: in-process tests hash with one
# round of PBKDF2 (what is tested is the rules, not the hash; test_auth checks that the
# console's own default is scrypt). Consoles the tests start as processes use scrypt.
CHEAP_HASH = "pbkdf2:sha256:1"
credentials.METHOD = CHEAP_HASH


@pytest.fixture(scope="session", autouse=True)
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    console.make_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def npm_supervisord(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where `require('supervisord')` finds the npm client Nodervisor uses."""
    return npm.install(tmp_path_factory.mktemp("npm"), "supervisord@0.1.0")


@pytest.fixture
def scrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The console's real password hash, for the tests of the hash itself."""
    monkeypatch.setattr(credentials, "METHOD", "scrypt")
    credentials._nobody.cache_clear()
    yield
    credentials._nobody.cache_clear()
