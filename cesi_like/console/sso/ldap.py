"""Checking a username and password against an LDAP directory or Active Directory (ldap3).

Every call is bounded (`timeout` to connect and for each answer), TLS always verifies the
server's certificate (against `ca_file`, or the system's CAs), and the username only enters a
filter escaped and a DN escaped, after the console's own username rule. An empty password is
refused before the directory is asked: LDAP treats a bind without one as anonymous, and
anonymous binds succeed."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from . import Identity, Unavailable
from .config import LdapSettings

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # the console's rule (services.users)
INVALID_CREDENTIALS = 49


class Directory:
    """One configured directory; cheap to make (a connection per call, closed after)."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
        self._server = ldap3.Server(settings.url, use_ssl=settings.url.startswith("ldaps:"),
                                    tls=tls, connect_timeout=settings.timeout,
                                    get_info=ldap3.NONE)

    def authenticate(self, username: str, password: str) -> Identity | None:
        """Who this is, when the password is theirs and the directory finds them allowed by
        `user_filter`; None for a wrong password or an unknown or filtered-out user.
        Raises Unavailable when the directory cannot be asked."""
        if not password or not USERNAME.match(username):
            return None
        settings = self.settings
        if settings.can_search:
            with self._bound(settings.bind_dn, settings.bind_password, "the service account") \
                    as service:
                entry = self._find(service, username)
                if entry is None:
                    return None
                with self._bound(entry.entry_dn, password) as user:
                    if user is None:
                        return None
                return self._identity(service, entry, username)
        assert settings.user_dn_template is not None
        dn = settings.user_dn_template.format(username=escape_rdn(username))
        with self._bound(dn, password) as user:
            if user is None:
                return None
            entry = self._find(user, username, own_dn=dn)
            return None if entry is None else self._identity(user, entry, username)

    def lookup(self, username: str) -> Identity | None:
        """The user as the directory has them now, without their password (needs the service
        account); None when they are gone or filtered out. Raises Unavailable."""
        settings = self.settings
        if not settings.can_search:
            raise Unavailable("no service account (bind_dn) to look users up with")
        if not USERNAME.match(username):
            return None
        with self._bound(settings.bind_dn, settings.bind_password, "the service account") \
                as service:
            entry = self._find(service, username)
            return None if entry is None else self._identity(service, entry, username)

    @contextmanager
    def _bound(self, who: str | None, password: str | None,
               required: str = "") -> Iterator[Any]:
        """A connection bound as `who` (None when the directory refuses the credentials, or
        Unavailable when they are `required`'s); closed afterwards."""
        settings = self.settings
        conn = ldap3.Connection(self._server, user=who, password=password, read_only=True,
                                receive_timeout=max(1, round(settings.timeout)),
                                auto_referrals=False,
                                raise_exceptions=False)
        try:
            try:
                conn.open()
                if settings.start_tls and not conn.start_tls():
                    raise Unavailable(f"StartTLS refused: {conn.result.get('description')}")
                bound = conn.bind()
            except LDAPException as exc:
                raise Unavailable(_reason(exc)) from None
            if not bound:
                if conn.result.get("result") != INVALID_CREDENTIALS:
                    raise Unavailable(f"bind failed: {conn.result.get('description')} "
                                      f"{conn.result.get('message') or ''}".strip())
                if required:
                    raise Unavailable(f"the directory refused {required}'s credentials")
                yield None
                return
            yield conn
        finally:
            try:
                conn.unbind()
            except LDAPException:
                pass

    def _search(self, conn: Any, base: str, query: str, scope: str,
                attributes: list[str], limit: int) -> list[Any]:
        try:
            conn.search(base, query, search_scope=scope, attributes=attributes,
                        size_limit=limit, time_limit=int(self.settings.timeout) or 1)
        except LDAPException as exc:
            raise Unavailable(_reason(exc)) from None
        if conn.result.get("result") not in (0, 4, 32):  # success, size limit, no such object
            raise Unavailable(f"search failed: {conn.result.get('description')}")
        return list(conn.entries)

    def _find(self, conn: Any, username: str, own_dn: str = "") -> Any:
        """The user's entry through `user_filter` (so a filter that leaves out disabled
        accounts refuses them): under `user_base`, or else the bound DN itself; one match or
        none."""
        settings = self.settings
        query = settings.user_filter.format(username=escape_filter_chars(username))
        attributes = [settings.username_attribute, settings.member_of_attribute]
        base, scope = ((settings.user_base, ldap3.SUBTREE) if settings.user_base
                       else (own_dn, ldap3.BASE))
        found = self._search(conn, base, query, scope, attributes, 2)
        return found[0] if len(found) == 1 else None

    def _identity(self, conn: Any, entry: Any, username: str) -> Identity:
        settings = self.settings
        if settings.group_base:
            query = settings.group_filter.format(dn=escape_filter_chars(entry.entry_dn),
                                                 username=escape_filter_chars(username))
            groups = [group.entry_dn for group in self._search(
                conn, settings.group_base, query, ldap3.SUBTREE, [], 1000)]
        else:
            groups = _values(entry, settings.member_of_attribute)
        names = [name for name in _values(entry, settings.username_attribute)
                 if USERNAME.match(name)]
        return Identity(names[0] if names else username, "ldap", tuple(groups))


def _values(entry: Any, attribute: str) -> list[str]:
    try:
        return [str(value) for value in entry[attribute].values]
    except (KeyError, LDAPException):
        return []


def _reason(exc: LDAPException) -> str:
    """ldap3 wraps the socket's or TLS's own error in tuples: say just what went wrong."""
    parts: list[str] = []
    pending: list[object] = list(exc.args)
    while pending:
        item = pending.pop(0)
        if isinstance(item, (tuple, list)):
            pending[:0] = list(item)
        elif not isinstance(item, type) and str(item):
            parts.append(str(item))
    text = "; ".join(parts) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."
