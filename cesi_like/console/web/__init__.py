"""The browser side: pages, forms and their live fragments, thin adapters over `services`.

One blueprint per area (auth, sso, fleet, problems, jobs, alerts, admin, activity); templates
live in `console/templates/<area>/`. Pages decide nothing themselves: a view declares the permission
it needs (`guard.permission`), the services decide with the thing at hand, and templates ask
`may(Permission.X)` before showing a button.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..context import actor
from ..services import access
from ..services.access import Permission


def register(app: Flask) -> None:
    from . import activity, admin, alerts, auth, fleet, format, jobs, problems, sso

    for blueprint in (auth.bp, sso.bp, fleet.bp, admin.bp, activity.bp, jobs.bp, alerts.bp,
                      problems.bp):
        app.register_blueprint(blueprint)
    app.jinja_env.globals.update(ago=format.ago, when=format.when,
                                 epoch_when=format.epoch_when, statename=format.statename,
                                 disabled=format.disabled, Permission=Permission, may=may,
                                 maintenance_nodes=maintenance_nodes)


def maintenance_nodes() -> list[Any]:
    """The nodes in maintenance the user may see: the banner on every page."""
    from ..services import problems
    from ..storage import db as database

    return problems.maintenance_nodes(database.session(), actor())


def may(permission: Permission) -> bool:
    """Whether the current user holds `permission` (which buttons and links to show)."""
    return access.allows(actor(), permission)
