"""Form definitions (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional, Regexp

from ..storage.models import Role

NAME = Regexp(r"^[A-Za-z0-9_.-]+$", message="Letters, digits, '.', '_' and '-' only.")
ROLES = [SelectChoice(role.value, role.value) for role in Role]


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Remember me")


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=256)])
    confirm = PasswordField("Repeat", validators=[EqualTo("new", "The passwords differ.")])


class UserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64), NAME])
    password = PasswordField("Password", validators=[Optional(), Length(min=8, max=256)])
    role = SelectField("Role", choices=ROLES)
    scope = SelectMultipleField("Environments (none: all)", coerce=int)
    active = BooleanField("Active", default=True)


class NodeForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64), NAME])
    url = StringField("URL", validators=[DataRequired(), Length(max=512), Regexp(
        r"^(https?|unix)://.+", message="Use http://host:port, https://... or unix:///path.")])
    username = StringField("Username", validators=[Optional(), Length(max=128)])
    password = PasswordField("Password (leave empty to keep)",
                             validators=[Optional(), Length(max=256)])
    clear_password = BooleanField("Remove the stored password")
    verify_tls = BooleanField("Verify the node's TLS certificate (https)", default=True)
    ca_file = StringField("CA file on the console host", validators=[Optional(), Length(max=512)])
    client_cert = StringField("Client certificate (PEM with key) on the console host",
                              validators=[Optional(), Length(max=512)])
    environments = SelectMultipleField("Environments", coerce=int)
    enabled = BooleanField("Enabled", default=True)
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])


class EnvironmentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64), NAME])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    nodes = SelectMultipleField("Nodes", coerce=int)
    protected = BooleanField("Protected: stopping, restarting or signalling any of its "
                             "processes asks for its name to be typed")


class TokenForm(FlaskForm):
    label = StringField("What it is for", validators=[Optional(), Length(max=64)])
    expires_days = IntegerField("Expires after (days, empty: never)",
                                validators=[Optional(), NumberRange(1, 3650)])
    read_only = BooleanField("Read-only (may only read, whatever your role)")


class RolloutForm(FlaskForm):
    environment = SelectField("Environment")
    group = StringField("Process group", validators=[DataRequired(), Length(max=255)])
    batch_size = IntegerField("Nodes at a time", default=1,
                              validators=[DataRequired(), NumberRange(1, 100)])
    pause = IntegerField("Pause between batches (seconds)", default=0,
                         validators=[Optional(), NumberRange(0, 3600)])
    keep_going = BooleanField("Go on when a node fails")
    include_maintenance = BooleanField("Restart nodes in maintenance too")


class AlertForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64), NAME])
    kind = SelectField("When", choices=[
        SelectChoice("crash", "a process exits unexpectedly or fails to start"),
        SelectChoice("fatal", "a process enters FATAL"),
        SelectChoice("flapping", "a process starts more than N times in the window"),
        SelectChoice("unreachable", "a node does not answer for T seconds"),
        SelectChoice("memory", "a process uses more memory than the limit (cesi-agentd)"),
        SelectChoice("cpu", "a process uses more CPU than the limit (cesi-agentd)")])
    # choices: "" (any) and the names that exist (web.alerts fills them in)
    environment = SelectField("Environment", validate_choice=True)
    group = SelectField("Process group", validate_choice=True)
    node = SelectField("Node", validate_choice=True)
    threshold = IntegerField("N: starts (flapping)", default=3,
                             validators=[DataRequired(), NumberRange(1, 1000)])
    window_minutes = IntegerField("Window, minutes (at most one alert per process or node in it)",
                                  default=10, validators=[DataRequired(), NumberRange(1, 10080)])
    unreachable_seconds = IntegerField("T: seconds (unreachable)", default=60,
                                       validators=[DataRequired(), NumberRange(1, 86400)])
    limit = DecimalField("Limit: MB (memory) or % of a core (cpu)", places=None,
                         validators=[Optional(), NumberRange(0.001, 10**7)])
    duration_seconds = IntegerField("For how long, seconds (memory, cpu)", default=60,
                                    validators=[DataRequired(), NumberRange(1, 86400)])
    action = SelectField("Then", choices=[
        SelectChoice("none", "alert only"),
        SelectChoice("restart", "restart the process (memory, cpu; once a window)")])
    webhook_url = StringField("Webhook URL", validators=[Optional(), Length(max=512)])
    webhook_secret = PasswordField("Webhook secret (signs the body)",
                                   validators=[Optional(), Length(max=256)])
    email_to = StringField("Email to", validators=[Optional(), Length(max=512)])
    notify = TextAreaField("Apprise URLs, one a line (slack://, workflows://, pagerduty://, "
                           "ntfy://, mailto://...)", validators=[Optional(), Length(max=20000)])
    enabled = BooleanField("On", default=True)


class AlertEditForm(AlertForm):
    """A rule's own page: what is sealed (the secret, the Apprise URLs) is never shown; left
    empty it stays, unless the box says to remove it."""

    remove_secret = BooleanField("Remove the webhook secret")
    remove_notify = BooleanField("Remove the Apprise URLs")


class ConfirmForm(FlaskForm):
    """An empty form: a POST with nothing but the CSRF token (delete, disable, clear...)."""
