"""Ports for tests: the kernel picks them (bind 0), so parallel runs never collide."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_url() -> str:
    """An http:// URL where nothing listens: a node that is down."""
    return f"http://127.0.0.1:{free_port()}"
