"""What every test gets: a migrated template database for the session, a cheap password
hash, and the `start_daemon` fixture; the helpers live in tests/support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cesi_like.console.services import credentials
from tests.support import console
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


@pytest.fixture
def scrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The console's real password hash, for the tests of the hash itself."""
    monkeypatch.setattr(credentials, "METHOD", "scrypt")
    credentials._nobody.cache_clear()
    yield
    credentials._nobody.cache_clear()
