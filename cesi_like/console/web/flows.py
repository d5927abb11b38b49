"""The two shapes of a change made from a page: a form that is shown again beside its field
when the rules refuse it, and a button that changes something and comes back with what
happened. Each commits what the service did, or nothing (a refusal's record is kept by the
service that refused)."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, request
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field

from ..services import Problem
from ..services.confirm import ConfirmationNeeded
from ..storage import db as database
from .forms import ConfirmForm


def saved(form: FlaskForm, change: Callable[[], str], back: str,
          renamed: dict[str, str] | None = None) -> Response | None:
    """When the form is valid, make the `change` (a service call that says what it did):
    commit it and go to `back` with its message. A refusal changes nothing and is shown beside
    the field it names (`renamed`: where the form calls the service's fields otherwise), or
    above the form; None: show the form (again)."""
    if not form.validate_on_submit():
        return None
    db = database.session()
    try:
        done = change()
    except Problem as exc:
        db.rollback()
        name = exc.field or ""
        field = getattr(form, (renamed or {}).get(name, name), None)
        if isinstance(field, Field):
            field.errors = [*field.errors, exc.message]
        else:
            flash(exc.message, "error")
        return None
    db.commit()
    flash(done, "success")
    return redirect(back)


def confirm_page(need: ConfirmationNeeded, back: str) -> str:
    """The question of a stop, restart or signal that needs a name typed: what it touches,
    and the form just posted again (its own fields, the CSRF token among them) with the
    name."""
    fields = [(name, value) for name, values in request.form.lists() if name != "confirm"
              for value in values]
    return render_template("confirm.html", q=need.question, fields=fields, back=back,
                           given=(request.form.get("confirm") or "").strip()[:64])


def pressed(change: Callable[[], str], back: str) -> Response:
    """A button (a POST with the CSRF token): make the change, commit it, flash what it did or
    why it was refused, and go to `back`."""
    if ConfirmForm().validate_on_submit():
        db = database.session()
        try:
            flash(change(), "success")
        except Problem as exc:
            db.rollback()
            flash(exc.message, "error")
        else:
            db.commit()
    return redirect(back)
