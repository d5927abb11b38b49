"""Waiting in tests: poll for an outcome with a deadline, never sleep a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# What a deadline check allows beyond the deadline itself: a loaded CI machine may add a few
# seconds to a call that keeps its deadline, and a call that does not waits out a node that
# never finishes (a drip, a stopped process), far longer.
LOAD_ROOM = 3.0


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`
    seconds, saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.02)
