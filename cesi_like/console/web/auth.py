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
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ..context import actor, client_ip, console
from ..guard import safe_next
from ..services import Problem, logins, sso
from ..services import tokens as token_rules
from ..services import users as user_rules
from ..services.access import Permission
from ..services.activity import Actor, record
from ..services.credentials import token_for_secret
from ..sso import Identity, Unavailable, oidc
from ..sso.config import OidcSettings, SignIn
from ..sso.ldap import Directory
from ..storage import db as database
from ..storage.models import Source, User, utcnow
from . import may
from .forms import ConfirmForm, LoginForm, PasswordForm, TokenForm

bp = Blueprint("auth", __name__)
ID_TOKEN = "oidc_id_token"  # the provider's ID token, kept for its logout (web.sso)
# an OpenID session that was due for its check ended: the login page asks the provider
# again without showing anything (web.sso), so an open page carries on while the provider
# still knows the user, and the groups are read afresh
RESUME = "oidc_resume"
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in."


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Session ids are `<id>.<session token>`: logout, a password or role change and a disable
    give the user a new random token, which ends every session issued before, in every worker.
    An SSO account's session is also confirmed again every `sso_recheck_minutes`."""
    number, _, token = user_id.partition(".")
    if not number.isdigit() or not token or len(number) > 18:
        return None
    db = database.session()
    user = db.get(User, int(number))
    if user is None or not user.active or not hmac.compare_digest(user.session_token, token):
        return None
    return user if _confirmed(db, user, from_session=True) else None


@login_manager.request_loader
def load_user_from_token(req: object) -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    db = database.session()
    token = token_for_secret(db, header[7:].strip())
    if token is None or not _confirmed(db, token.user, from_session=False):
        return None
    g.token_auth = True
    g.token_read_only = token.read_only
    return token.user


def _confirmed(db: Session, user: User, from_session: bool) -> bool:
    """An SSO account whose last confirmation is older than `sso_recheck_minutes` is asked
    about again (services.sso.recheck). A token has no session to end: it is re-checked only
    where the directory or provider can be asked without the user (`_lookup`), and works on
    otherwise. An OpenID session that ends here is marked for a silent sign-in (RESUME)."""
    sign_in: SignIn = current_app.config["CESI_SIGN_IN"]
    if not sso.due(user, sign_in.recheck_minutes):
        return True
    lookup = _lookup(sign_in, user)
    if lookup is None and not from_session:
        return True
    who = Actor(user, client_ip(), current_app.config.get("CESI_ACTIVITY_LOG"))
    confirmed = sso.recheck(db, who, user, lookup, sign_in.rules(user.source),
                            sign_in.recheck_minutes)
    if not confirmed and from_session and user.source == Source.OIDC:
        session[RESUME] = True
    return confirmed


def _lookup(sign_in: SignIn, user: User) -> sso.Lookup | None:
    """How `user` can be asked about without them: the directory's service account, or the
    refresh token the provider gave at sign-in; None when neither is there."""
    directory = _directory(sign_in)
    if user.source == Source.LDAP and directory is not None and directory.settings.can_search:
        return lambda found: directory.lookup(found.username)
    settings = sign_in.active_oidc
    if user.source == Source.OIDC and settings is not None and user.sso_refresh:
        return lambda found: _ask_provider(settings, found)
    return None


def _ask_provider(settings: OidcSettings, user: User) -> Identity | None:
    """The provider's word on `user` from their refresh token, which is kept sealed (a
    provider may give a new one with each answer)."""
    assert user.sso_refresh is not None
    secrets = console().secrets

    def keep(token: str) -> None:
        user.sso_refresh = secrets.encrypt(token)

    return oidc.ask_again(settings, secrets.decrypt(user.sso_refresh), keep)


def _directory(sign_in: SignIn) -> Directory | None:
    return Directory(sign_in.active_ldap) if sign_in.active_ldap else None


def login_page(notice: str = "", status: int = 200,
               form: LoginForm | None = None) -> tuple[str, int]:
    """The login page: the password form (local accounts and the directory's) and, when an
    OpenID provider is on, its button; `notice` says what went wrong."""
    sign_in: SignIn = current_app.config["CESI_SIGN_IN"]
    oidc_name = sign_in.active_oidc.name if sign_in.active_oidc else None
    return render_template("auth/login.html", form=form or LoginForm(), notice=notice,
                           oidc_name=oidc_name,
                           directory=sign_in.active_ldap is not None), status


def signed_in(user: User, remember: bool = False) -> None:
    """Start `user`'s session. A CSRF token from before the login (perhaps planted) is not
    the session's."""
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)
    login_user(user, remember=remember)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("fleet.dashboard"))
    sign_in: SignIn = current_app.config["CESI_SIGN_IN"]
    if request.method == "GET" and session.pop(RESUME, False) and sign_in.active_oidc:
        return redirect(url_for("sso.oidc_login", next=request.args.get("next"), silent=1))
    form = LoginForm()
    if not form.validate_on_submit():
        return login_page(form=form)
    db = database.session()
    try:
        outcome = logins.log_in(db, actor(), form.username.data or "", form.password.data or "",
                                current_app.config["CESI_LOGIN_POLICY"], _directory(sign_in),
                                sign_in.rules("ldap"), sign_in.local)
    except Unavailable as exc:
        return login_page(f"The directory could not be reached ({exc}); try again later. "
                          "Local accounts can still log in.", 503, form)
    except sso.LoginRefused as exc:
        return login_page(exc.message, exc.status, form)
    if isinstance(outcome, logins.Refused):
        form.password.errors.append(f"Too many failed logins from here. Try again in "
                                    f"{outcome.retry_after} seconds, or ask an admin.")
        page, status = login_page(status=429, form=form)
        response = make_response(page, status)
        response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    if outcome is None:
        form.password.errors.append("Unknown user or wrong password.")
        return login_page(status=401, form=form)
    signed_in(outcome, remember=bool(form.remember.data))
    return redirect(safe_next(request.args.get("next"), url_for("fleet.dashboard")))


@bp.post("/logout")
@login_required
def logout() -> Response:
    db = database.session()
    user = db.get(User, current_user.id)
    if user is not None:
        user.end_sessions()  # the saved cookies stop working too, not only this browser's copy
    record(db, actor(), "logout", current_user.username)
    db.commit()
    id_token = session.pop(ID_TOKEN, None)
    logout_user()
    from .sso import end_session_url

    provider = end_session_url(id_token)
    if provider is None:
        return _logged_out()
    # a form's redirect to another site is blocked by the CSP (form-action 'self'): a page
    # that moves on is not
    sign_in: SignIn = current_app.config["CESI_SIGN_IN"]
    assert sign_in.oidc is not None
    return make_response(render_template("auth/provider_logout.html",
                                         provider=sign_in.oidc.name, url=provider))


def _logged_out() -> Response:
    flash("Logged out.", "success")
    return redirect(url_for("auth.login"))


@bp.get("/account")
@login_required
def account() -> str:
    """Who you are, and your API tokens (an admin's ?all=1: everyone's)."""
    return _account_page(TokenForm())


def _account_page(form: TokenForm, secret: str | None = None) -> str:
    everyone = request.args.get("all") == "1" and may(Permission.TOKENS_OF_OTHERS)
    listed = token_rules.visible(database.session(), actor(), everyone)
    return render_template("auth/account.html", form=form, tokens=listed, secret=secret,
                           everyone=everyone, confirm=ConfirmForm(), now=utcnow())


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
    except Problem as exc:
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
        try:
            user = user_rules.change_own_password(db, actor(), form.current.data or "",
                                                  form.new.data or "")
        except Problem as exc:
            db.rollback()  # a refusal changed nothing (its record is kept)
            field = form.current if exc.field == "current" else form.new
            field.errors.append(exc.message)
            return render_template("auth/password.html", form=form)
        db.commit()
        login_user(user)  # keep this session, with the new version
        flash("Password changed.", "success")
        return redirect(url_for("fleet.dashboard"))
    return render_template("auth/password.html", form=form)
