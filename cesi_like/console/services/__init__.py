"""The console's rules, free of Flask: the HTML views, the JSON API and the CLI are thin adapters
over these modules. A rule broken raises a `ServiceError`; each adapter turns it into its own
kind of answer (a message beside the form field it names, a JSON error with the status, a line
on stderr). Who may do what is decided in one of them: `access`."""

from __future__ import annotations


class ServiceError(Exception):
    """Something the caller asked for that the rules refuse; `status` is the HTTP analogue."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the input it is about, for a form to show it beside


class Problem(ServiceError):
    """Something wrong with what was asked, or with the node: a page shows it beside its
    form. (Forbidden and NotFound are not problems to fix on a form: they end the request.)"""


class Invalid(Problem, ValueError):
    """Bad input; also a ValueError, so code that parses values (the config reader) can catch
    it as one."""

    status = 400


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(Problem):
    status = 409


class NodeFailed(Problem):
    """The node did not answer usably (hung, unreachable...): the console is fine, the node
    is not."""

    status = 502
