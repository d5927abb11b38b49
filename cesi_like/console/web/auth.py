"""Login, logout, own password; how a request is authenticated (session or bearer token)."""

from __future__ import annotations

import hmac

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from ..security import check_password, safe_next, token_for_secret
from ..services import ServiceError, logins
from ..services import tokens as token_rules
from ..services import users as user_rules
from ..storage import db as database
from ..storage.models import Role, User, utcnow
from .activity import actor, client_ip, record
from .forms import ConfirmForm, PasswordForm, TokenForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in."



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
    token = token_for_secret(database.session(), header[7:].strip())
    if token is None:
        return None
    g.token_auth = True
    g.token_read_only = token.read_only
    return token.user


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    from .forms import LoginForm

    if current_user.is_authenticated:
        return redirect(url_for("fleet.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        db = database.session()
        username = form.username.data or ""
        outcome = logins.authenticate(db, username, form.password.data or "", client_ip(),
                                      current_app.config["CESI_LOGIN_POLICY"])
        if isinstance(outcome, logins.Refused):
            record(db, "login.refused", target=username, result="denied",
                   detail="too many failed logins", username=username)
            db.commit()
            form.password.errors.append(f"Too many failed logins from here. Try again in "
                                        f"{outcome.retry_after} seconds, or ask an admin.")
            page = make_response(render_template("auth/login.html", form=form), 429)
            page.headers["Retry-After"] = str(outcome.retry_after)
            return page
        if outcome is None:
            record(db, "login.failed", target=username, result="denied", username=username)
            db.commit()
            form.password.errors.append("Unknown user or wrong password.")
            return render_template("auth/login.html", form=form), 401
        user = outcome
        user.last_login = utcnow()
        # a CSRF token from before the login (perhaps planted) is not the session's
        session.pop("csrf_token", None)
        g.pop("csrf_token", None)
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


@bp.get("/account")
@login_required
def account() -> str:
    """Who you are, and your API tokens (an admin's ?all=1: everyone's)."""
    return _account_page(TokenForm())


def _account_page(form: TokenForm, secret: str | None = None) -> str:
    everyone = request.args.get("all") == "1" and current_user.has_role(Role.ADMIN)
    listed = token_rules.visible(database.session(), actor(), everyone)
    return render_template("auth/account.html", form=form, tokens=listed, secret=secret,
                           everyone=everyone, confirm=ConfirmForm(), now=utcnow(),
                           is_admin=current_user.has_role(Role.ADMIN))


@bp.post("/account/tokens")
@login_required
def token_create() -> str | Response:
    """Make a token and show its secret on this answer only (never in a redirect or cookie)."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _account_page(form)
    db = database.session()
    user = actor().user
    assert user is not None
    try:
        secret, _ = token_rules.create(db, actor(), user, form.label.data or "",
                                       form.expires_days.data, bool(form.read_only.data))
    except ServiceError as exc:
        form.label.errors = [*form.label.errors, exc.message]
        return _account_page(form)
    db.commit()
    response = make_response(_account_page(TokenForm(formdata=None), secret))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/tokens/<token_id>/revoke")
@login_required
def token_revoke(token_id: str) -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    db = database.session()
    revoked = token_rules.revoke(db, actor(), token_id)
    db.commit()
    flash(f"Token {revoked.id} ({revoked.name or 'no label'}) of {revoked.user.username} "
          "revoked.", "success")
    return redirect(url_for("auth.account", all=request.args.get("all")))


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
        try:
            user_rules.update(db, actor(), user, password=form.new.data or "")
        except ServiceError as exc:
            form.new.errors.append(exc.message)
            return render_template("auth/password.html", form=form)
        db.commit()
        login_user(user)  # keep this session, with the new version
        flash("Password changed.", "success")
        return redirect(url_for("fleet.dashboard"))
    return render_template("auth/password.html", form=form)
