"""The WSGI entry point gunicorn loads (`cesi-like serve`)."""

from . import create_app

app = create_app()
