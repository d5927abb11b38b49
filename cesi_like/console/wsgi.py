"""The WSGI entry point gunicorn loads (`cesi-like serve`): the app, with its poller running
(only the worker holding the poller lease polls; the others stand by)."""

from . import create_app

app = create_app({"CESI_POLLER": True})
