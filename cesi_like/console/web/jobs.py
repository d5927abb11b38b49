"""Rolling restarts in the browser: a form to start one, the list of jobs, and a job's page
whose steps refresh live (the same conditional fragments as the fleet pages) with a Cancel
button. The rules are `services/rollouts.py` and `services/jobs.py`."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from ..services import ServiceError, jobs, rollouts
from ..storage import db as database
from ..storage.models import Environment, Role, User
from .activity import actor
from .forms import ConfirmForm, RolloutForm
from .fragments import live_page

bp = Blueprint("jobs", __name__)


def _user() -> User:
    user = actor().user
    assert user is not None  # the login gate ran
    return user


@bp.route("/rollouts/new", methods=["GET", "POST"])
def new_rollout() -> Response | str:
    db = database.session()
    user = _user()
    form = RolloutForm()
    environments = [env.name for env in db.scalars(select(Environment).order_by(Environment.name))
                    if not user.scope or user.has_role(Role.ADMIN) or env in user.scope]
    form.environment.choices = [SelectChoice(name, name) for name in environments]
    if request.method == "GET":
        form.group.data = form.group.data or request.args.get("group", "")[:255]
        if request.args.get("environment") in environments:
            form.environment.data = request.args["environment"]
    if form.validate_on_submit():
        try:
            job = rollouts.start(db, actor(), form.environment.data or "", form.group.data or "",
                                 form.batch_size.data, form.pause.data or 0,
                                 bool(form.keep_going.data))
        except ServiceError as exc:
            db.rollback()
            form.group.errors = [*form.group.errors, exc.message]
        else:
            if runner := current_app.extensions.get("cesi_jobs"):
                runner.wake()  # this process may run it at once
            flash(f"Rolling restart queued: {job.title}.", "success")
            return redirect(url_for("jobs.show", job_id=job.id))
    return render_template("jobs/new.html", form=form,
                           may_act=user.has_role(Role.OPERATOR))


@bp.get("/jobs")
def index() -> Response:
    listed = jobs.listed(database.session(), _user())
    return live_page("jobs/index.html", "jobs/_index.html", jobs=listed,
                 interval=_interval(), may_act=_user().has_role(Role.OPERATOR))


@bp.get("/jobs/<int:job_id>")
def show(job_id: int) -> Response:
    job = jobs.get(database.session(), _user(), job_id)
    return live_page("jobs/show.html", "jobs/_show.html", job=job, steps=json.loads(job.steps),
                 spec=json.loads(job.spec), finished=jobs.JobState(job.state).finished,
                 confirm=ConfirmForm(), interval=_interval(),
                 may_act=_user().has_role(Role.OPERATOR))


@bp.post("/jobs/<int:job_id>/cancel")
def cancel(job_id: int) -> Response:
    db = database.session()
    if ConfirmForm().validate_on_submit():
        try:
            job = jobs.cancel(db, actor(), job_id)
            db.commit()
            flash(f"Job {job.id}: cancel requested; it stops before its next batch.", "success")
        except ServiceError as exc:
            db.rollback()
            flash(exc.message, "error")
    return redirect(url_for("jobs.show", job_id=job_id))


def _interval() -> int:
    return min(int(current_app.config["CESI_POLL_INTERVAL"] * 1000), 2000)
