"""`/api/v1`: JSON for scripts and the UI, one module per resource (routes on `base.bp`).
Auth by session (with an X-CSRFToken header on writes) or `Authorization: Bearer <token>`;
every error is JSON with a message; every JSON body refuses unknown fields. `/metrics` and
`/healthz` live here too, as blueprints of their own."""

from __future__ import annotations

from . import (  # noqa: F401 - each adds its routes to bp
    alerts,
    bulk,
    config,
    environments,
    jobs,
    nodes,
    openapi,
    problems,
    processes,
    rollouts,
    tokens,
    users,
)
from .base import bp

__all__ = ["bp"]
