"""The central console: a Flask app over the nodes' Supervisor XML-RPC.

`app.create_app` builds it; the packages show the architecture: `web/` (pages), `api/` (JSON,
`/metrics`, `/healthz`), `services/` (the rules), `workers/` (poller, job runner, alert
delivery), `storage/` (database, models, sealed secrets, migrations).
"""

from .app import create_app

__all__ = ["create_app"]
