"""Directory groups to console rights.

`groups` in `[ldap]` or `[oidc]` has one rule a line: `GROUP -> ROLE` (every environment) or
`GROUP -> ROLE: env1, env2`. A user in several mapped groups gets the highest role and the
union of the environments (a rule for every environment makes it every environment); in none,
no access at all. An LDAP group matches by its DN or its first RDN's value (`cn=web,ou=...` is
also `web`), case-insensitively; an OIDC group by the claim's value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..storage.models import Role

RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class GroupRule:
    group: str  # lower case
    role: Role
    environments: tuple[str, ...]  # empty: every environment


@dataclass(frozen=True)
class Grant:
    """What a user's groups give: a role and environments (empty: every one)."""

    role: Role
    environments: tuple[str, ...]


def parse_rules(text: str) -> tuple[GroupRule, ...]:
    """The `groups` setting; ValueError naming the line that is wrong."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        group, arrow, grant = line.partition("->")
        role_text, _, envs = grant.partition(":")
        if not arrow or not group.strip():
            raise ValueError(f"line {number}: expected 'GROUP -> ROLE' or "
                             f"'GROUP -> ROLE: env1, env2', got {line[:80]!r}")
        try:
            role = Role(role_text.strip().lower())
        except ValueError:
            raise ValueError(f"line {number}: the role must be admin, operator or viewer, "
                             f"not {role_text.strip()[:20]!r}") from None
        environments = tuple(sorted({e.strip() for e in envs.split(",") if e.strip()}))
        if role == Role.ADMIN and environments:
            raise ValueError(f"line {number}: admins manage the whole console and cannot be "
                             "limited to environments")
        rules.append(GroupRule(group.strip().lower(), role, environments))
    if not rules:
        raise ValueError("no rule: nobody could log in (one a line: GROUP -> ROLE[: envs])")
    return tuple(rules)


def _names(group: str) -> set[str]:
    """An LDAP group DN answers to the DN and to its first RDN's value."""
    lowered = group.strip().lower()
    first = lowered.split(",", 1)[0]
    names = {lowered}
    if "=" in first:
        names.add(first.split("=", 1)[1].strip())
    return names


def grant_for(groups: Iterable[str], rules: Iterable[GroupRule]) -> Grant | None:
    """The highest role and the union of environments of the rules the groups match; None
    when no rule matches."""
    names: set[str] = set().union(*(_names(group) for group in groups))
    matched = [rule for rule in rules if rule.group in names]
    if not matched:
        return None
    role = max((rule.role for rule in matched), key=RANK.__getitem__)
    if role == Role.ADMIN or any(not rule.environments for rule in matched):
        return Grant(role, ())
    return Grant(role, tuple(sorted({e for rule in matched for e in rule.environments})))
