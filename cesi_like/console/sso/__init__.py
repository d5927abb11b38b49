"""Single sign-on: company directories (LDAP, Active Directory) and OpenID Connect providers
tell the console who a user is and which groups they are in; the group map in `cesi.conf`
turns those groups into a role and environments.

`config` reads the `[ldap]` and `[oidc]` sections, `groups` maps groups to a grant, `ldap`
talks to the directory (ldap3), `oidc` to the provider (Authlib). What an identity becomes in
the database, and when it is checked again, is `services.sso`'s job; the login pages are in
`web.auth` and `web.sso`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who the directory or provider says signed in: the console username, and the groups
    (LDAP: group DNs; OIDC: the values of the groups claim)."""

    username: str
    source: str  # "ldap" or "oidc"
    groups: tuple[str, ...]


class Unavailable(Exception):
    """The directory or provider could not be asked (down, slow, TLS refused): not the user's
    fault, and not a failed login."""
