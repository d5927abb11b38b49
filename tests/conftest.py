"""Fixtures every test package may use; the helpers themselves live in tests/support."""

from tests.support.daemons import start_daemon

__all__ = ["start_daemon"]
