"""What a value must look like before the console stores it: one set of checks for the admin
forms, the JSON API, the CLI and the config file, so none of them accepts what another refuses.

Each check takes whatever the caller got (JSON gives any type) and returns the clean value or
raises `Invalid` naming the field. `Invalid` is also a ValueError, so the config reader can
turn it into an error with the file, line and key.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from . import Invalid

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"

# field -> longest accepted value, in characters
LIMITS = {"url": 512, "host": 253, "username": 128, "password": 256, "notes": 2000,
          "description": 2000, "ca_file": 512, "client_cert": 512, "label": 64}
MULTILINE = {"notes", "description"}


def fields(given: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Invalid naming what `given` holds beyond `allowed`: a misspelt field is never ignored
    (ignoring `grops` would apply every change instead of the one asked for)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)[:200]}", unknown[0])


def name(value: Any, what: str = "name") -> str:
    """A node, environment or user name: safe in a URL path, a log line and a shell."""
    clean = text(value, what, limit=64, required=True)
    if not NAME.match(clean):
        raise Invalid(f"{what}: {NAME_RULE}", what)
    return clean


def tls_file(value: Any, what: str) -> str:
    """A node's CA file or client certificate: "" to clear, else a file this console host can
    read (the node client opens it on every call, so a missing one is pointed out while the
    mistake is being made)."""
    clean = text(value, what)
    if clean:
        try:
            with open(clean, "rb"):
                pass
        except OSError:
            raise Invalid(f"{what}: no readable file at {clean} on the console host",
                          what) from None
    return clean


def text(value: Any, what: str, limit: int | None = None, required: bool = False) -> str:
    """A string field, stripped: "" when absent and not `required`. Refuses other types,
    NUL and (outside notes and descriptions) control characters, lone surrogates, and
    anything longer than the field's limit."""
    if value is None:
        if required:
            raise Invalid(f"{what} is required", what)
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string", what)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise Invalid(f"{what} must be valid Unicode text", what) from None
    allowed = "\n\r\t" if what in MULTILINE else ""
    if any(not c.isprintable() and c not in allowed for c in value):
        raise Invalid(f"{what} must not contain control characters", what)
    clean: str = value.strip()
    longest = limit if limit is not None else LIMITS.get(what, 256)
    if len(clean) > longest:
        raise Invalid(f"{what} is longer than {longest} characters", what)
    if required and not clean:
        raise Invalid(f"{what} is required", what)
    return clean


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{what} must be true or false", what)
    return value


def names(value: Any, what: str) -> list[str]:
    """A list of names (environments of a node, nodes of an environment)."""
    if not isinstance(value, list | tuple) or not all(isinstance(n, str) for n in value):
        raise Invalid(f"{what} must be a list of names", what)
    if len(value) > 10_000:
        raise Invalid(f"{what}: too many", what)
    return [name(n, what) for n in value]


Number = TypeVar("Number", int, float)


def _ranged(value: Any, what: str, kind: type[Number], low: Number, high: Number) -> Number:
    noun = "a whole number" if kind is int else "a number"
    if isinstance(value, bool):  # JSON's true is not 1
        raise Invalid(f"{what} must be {noun}", what)
    try:
        found = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise Invalid(f"{what} must be {noun}", what) from None
    if not low <= found <= high:  # NaN compares false: refused here too
        shown = [f"{limit:g}" if kind is float else str(limit) for limit in (low, high)]
        raise Invalid(f"{what} must be from {shown[0]} to {shown[1]}", what)
    return found


def number(value: Any, what: str, low: float, high: float) -> float:
    """A number (a fraction too) from `low` to `high`; not NaN, not a boolean."""
    return _ranged(value, what, float, low, high)


def whole(value: Any, what: str, low: int, high: int) -> int:
    """A whole number from `low` to `high` (JSON numbers, form strings)."""
    return _ranged(value, what, int, low, high)


def known(found: Sequence[str], asked: Sequence[str], what: str) -> None:
    """Invalid naming the asked-for names that do not exist."""
    missing = sorted(set(asked) - set(found))
    if missing:
        raise Invalid(f"unknown {what}: {', '.join(missing)}", what)
