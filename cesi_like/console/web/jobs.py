"""Rolling restarts in the browser: a form to start one, the list of jobs, and a job's page
whose steps refresh live (the same conditional fragments as the fleet pages) with a Cancel
button. The rules are `services/rollouts.py` and `services/jobs.py`."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from ..context import actor, confirmation, console
from ..guard import permission
from ..services import Problem, access, jobs, rollouts
from ..services.access import Permission
from ..services.confirm import ConfirmationNeeded
from ..storage import db as database
from .flows import confirm_page, pressed
from .forms import ConfirmForm, RolloutForm
from .fragments import live_page

bp = Blueprint("jobs", __name__)


@bp.route("/rollouts/new", methods=["GET", "POST"])
@permission(Permission.PROCESSES)
def new_rollout() -> Response | str:
    db = database.session()
    form = RolloutForm()
    environments = [env.name for env in access.environments(db, actor())]
    form.environment.choices = [SelectChoice(name, name) for name in environments]
    if request.method == "GET":
        form.group.data = form.group.data or request.args.get("group", "")[:255]
        if request.args.get("environment") in environments:
            form.environment.data = request.args["environment"]
    if form.validate_on_submit():
        try:
            job = rollouts.start(db, actor(), form.environment.data or "", form.group.data or "",
                                 form.batch_size.data, form.pause.data or 0,
                                 bool(form.keep_going.data),
                                 confirmation=confirmation(request.form.get("confirm")),
                                 include_maintenance=bool(form.include_maintenance.data))
        except ConfirmationNeeded as need:
            db.rollback()
            return confirm_page(need, url_for("jobs.index"))
        except Problem as exc:
            db.rollback()
            form.group.errors = [*form.group.errors, exc.message]
        else:
            console().wake_jobs()
            flash(f"Rolling restart queued: {job.title}.", "success")
            return redirect(url_for("jobs.show", job_id=job.id))
    return render_template("jobs/new.html", form=form)


@bp.get("/jobs")
def index() -> Response:
    listed = access.jobs(database.session(), actor())
    return live_page("jobs/index.html", "jobs/_index.html", jobs=listed, interval=_interval())


@bp.get("/jobs/<int:job_id>")
def show(job_id: int) -> Response:
    job = access.job(database.session(), actor(), job_id)
    message, steps = jobs.shown(job, access.sees_job_detail(actor(), job))
    return live_page("jobs/show.html", "jobs/_show.html", job=job, message=message,
                     steps=steps, spec=json.loads(job.spec),
                     finished=jobs.JobState(job.state).finished, confirm=ConfirmForm(),
                     interval=_interval())


@bp.post("/jobs/<int:job_id>/cancel")
def cancel(job_id: int) -> Response:
    def stop() -> str:
        job = jobs.cancel(database.session(), actor(), job_id)
        return f"Job {job.id}: cancel requested; it stops before its next batch."

    return pressed(stop, url_for("jobs.show", job_id=job_id))


def _interval() -> int:
    return min(int(current_app.config["CESI_POLL_INTERVAL"] * 1000), 2000)
