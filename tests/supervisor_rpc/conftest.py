"""Real daemons for these tests, from the agent's fixtures."""

from tests.agent.conftest import start_daemon

__all__ = ["start_daemon"]
