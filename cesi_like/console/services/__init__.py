"""The console's rules, free of Flask: the HTML views, the JSON API and the CLI are thin adapters
over these modules. A rule broken raises a `ServiceError`; each adapter turns it into its own
kind of answer (a flashed message, a JSON error with the status, a line on stderr)."""

from __future__ import annotations


class ServiceError(Exception):
    """Something the caller asked for that the rules refuse; `status` is the HTTP analogue."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(ServiceError, ValueError):
    """Bad input; also a ValueError, so code that parses values (the config reader) can catch
    it as one."""

    status = 400


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class NodeFailed(ServiceError):
    """The node did not answer usably (hung, unreachable...): the console is fine, the node
    is not."""

    status = 502
