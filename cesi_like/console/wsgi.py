"""The WSGI entry point gunicorn loads (`cesi-like serve`): the app, with a standby poller
(the poller process that `gunicorn_hooks` starts holds the lease; a worker's poller takes over
only if that process dies)."""

from .app import create_app

app = create_app({"CESI_POLLER": "standby"})
