"""Login, logout, own password; how a request is authenticated (session or bearer token)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from . import db as database
from .activity import client_ip, recent_failures, record
from .forms import PasswordForm
from .models import User, utcnow
from .security import check_password, hash_password, safe_next, user_for_token

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in."

MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_IP = 20


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Session ids are `<id>.<session token>`: logout, a password or role change and a disable
    give the user a new random token, which ends every session issued before, in every worker."""
    number, _, token = user_id.partition(".")
    if not number.isdigit() or not token or len(number) > 18:
        return None
    user = database.session().get(User, int(number))
    if user is None or not user.active or not hmac.compare_digest(user.session_token, token):
        return None
    return user


@login_manager.request_loader
def load_user_from_token(req: object) -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    user = user_for_token(database.session(), header[7:].strip())
    if user is not None:
        g.token_auth = True
    return user


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    from .forms import LoginForm

    if current_user.is_authenticated:
        return redirect(url_for("fleet.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        db = database.session()
        username = form.username.data or ""
        if (recent_failures(db, username=username) >= MAX_FAILURES_PER_USER
                or recent_failures(db, ip=client_ip()) >= MAX_FAILURES_PER_IP):
            record(db, "login.refused", target=username, result="denied",
                   detail="too many failed logins", username=username)
            db.commit()
            form.password.errors.append(
                "Too many failed logins. Wait 15 minutes, or ask an admin.")
            return render_template("auth/login.html", form=form), 429
        user = db.scalar(select(User).where(User.username == username))
        if user is None or not user.active or not check_password(user, form.password.data or ""):
            record(db, "login.failed", target=username, result="denied", username=username)
            db.commit()
            form.password.errors.append("Unknown user or wrong password.")
            return render_template("auth/login.html", form=form), 401
        user.last_login = utcnow()
        login_user(user, remember=bool(form.remember.data))
        record(db, "login", target=username, username=username)
        db.commit()
        return redirect(safe_next(request.args.get("next"), url_for("fleet.dashboard")))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    db = database.session()
    user = db.get(User, current_user.id)
    if user is not None:
        user.end_sessions()  # the saved cookies stop working too, not only this browser's copy
    record(db, "logout", target=current_user.username)
    db.commit()
    logout_user()
    flash("Logged out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> str | Response:
    form = PasswordForm()
    if form.validate_on_submit():
        db = database.session()
        user = db.get(User, current_user.id)
        assert user is not None
        if not check_password(user, form.current.data or ""):
            form.current.errors.append("That is not your current password.")
            record(db, "password.change", target=user.username, result="denied")
            db.commit()
            return render_template("auth/password.html", form=form)
        user.password_hash = hash_password(form.new.data or "")
        user.end_sessions()
        record(db, "password.change", target=user.username)
        db.commit()
        login_user(user)  # keep this session, with the new version
        flash("Password changed.", "success")
        return redirect(url_for("fleet.dashboard"))
    return render_template("auth/password.html", form=form)
