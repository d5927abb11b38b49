"""What a console app holds besides Flask's own, and who the current request acts for.

One typed `Console` per app instead of string keys in `app.extensions`: its database, the node
client, the sealed node secrets, the snapshot cache, alert delivery, and, in a process that
polls, the poller and the job runner. Reach it with `console()` (the current app's) or
`console(app)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app, request
from flask_login import current_user
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..supervisor_rpc.node import NodeClient
from .services import snapshot
from .services.activity import Actor
from .services.confirm import Confirmation
from .services.snapshot import Freshness, NodeView, SnapshotCache
from .storage.models import Node
from .storage.secrets import NodeSecrets

if TYPE_CHECKING:
    from .workers.alerts import Delivery
    from .workers.job_runner import JobRunner
    from .workers.poller import Poller
    from .workers.sampler import Sampler

_KEY = "cesi_like"


@dataclass
class Console:
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: NodeSecrets
    nodes: NodeClient
    snapshots: SnapshotCache
    alerts: Delivery
    poller: Poller | None = None
    jobs: JobRunner | None = None
    sampler: Sampler | None = None

    def install(self, app: Flask) -> None:
        app.extensions[_KEY] = self

    def wake_jobs(self) -> None:
        """A job was just queued: this process's runner (if it has one) may take it at once;
        otherwise some runner claims it within a quarter of a poll interval."""
        if self.jobs is not None:
            self.jobs.wake()


def console(app: Flask | None = None) -> Console:
    found: Console = (app or current_app).extensions[_KEY]
    return found


def client_ip() -> str:
    return request.remote_addr or ""


def actor() -> Actor:
    """The current request's user, address and activity file, for the services."""
    user = current_user._get_current_object() if current_user.is_authenticated else None
    return Actor(user, client_ip() if request else "",
                 current_app.config.get("CESI_ACTIVITY_LOG"))


def confirmation(given: object) -> Confirmation:
    """What the request typed to confirm a dangerous action (services.confirm), with this
    console's `confirm_over`."""
    return Confirmation(given if isinstance(given, str) else None,
                        current_app.config["CESI_CONFIRM_OVER"])


def snapshot_views(db: Session, nodes: Sequence[Node]) -> list[NodeView]:
    """The snapshot of `nodes` as pages and the API show it, through this worker's cache."""
    config = current_app.config
    return snapshot.view(db, nodes, Freshness(config["CESI_POLL_INTERVAL"],
                                              config["CESI_NODE_TIMEOUT"]), console().snapshots)
