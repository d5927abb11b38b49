"""The `[ldap]` and `[oidc]` sections of `cesi.conf`, checked when the console starts.

Every key can also come from the environment as `CESI_LIKE_LDAP_<KEY>` or
`CESI_LIKE_OIDC_<KEY>` (the secrets, `bind_password` and `client_secret`, usually do), which
beats the file; a section given only by the environment counts as present."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .groups import GroupRule, parse_rules

Fail = Callable[[str, str], Exception]  # (key, reason) -> the error to raise


@dataclass(frozen=True)
class LdapSettings:
    """How to find and check a user in an LDAP directory or Active Directory.

    Search then bind: the service account (`bind_dn`) searches `user_base` with
    `user_filter`, then the user's own password binds as the DN found. Direct bind:
    `user_dn_template` makes the DN (or an AD `user@domain` name) from the username, and the
    user's own bind reads their entry. Groups come from a search under `group_base` with
    `group_filter`, or from the entry's `member_of_attribute`."""

    url: str
    groups: tuple[GroupRule, ...]
    start_tls: bool = False
    ca_file: str | None = None
    bind_dn: str | None = None
    bind_password: str | None = None
    user_base: str | None = None
    user_filter: str = "(uid={username})"
    user_dn_template: str | None = None
    username_attribute: str = "uid"
    group_base: str | None = None
    group_filter: str = "(member={dn})"
    member_of_attribute: str = "memberOf"
    timeout: float = 5.0

    @property
    def can_search(self) -> bool:
        """A service account can look a user up without their password (for re-checks)."""
        return bool(self.bind_dn and self.user_base)


@dataclass(frozen=True)
class OidcSettings:
    """An OpenID Connect provider: found by its discovery URL, the console a confidential
    client of it (authorization code flow with PKCE)."""

    discovery_url: str
    client_id: str
    client_secret: str
    groups: tuple[GroupRule, ...]
    name: str = "single sign-on"  # the button says "Log in with NAME"
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    username_claim: str = "preferred_username"
    timeout: float = 5.0
    # sent with every sign-in that shows the provider's pages: `consent` where the provider
    # issues a refresh token (offline_access) only then, as OpenID Connect Core 11 allows
    prompt: str = ""

    @property
    def offline(self) -> bool:
        """The console asks for a refresh token, to re-check users without them."""
        return "offline_access" in self.scopes.split()


@dataclass(frozen=True)
class SignIn:
    """The sign-in methods an app offers, as the login pages and session checks need them."""

    methods: frozenset[str]  # local, ldap, oidc
    ldap: LdapSettings | None = None
    oidc: OidcSettings | None = None
    recheck_minutes: float = 15.0

    @property
    def local(self) -> bool:
        return "local" in self.methods

    @property
    def active_ldap(self) -> LdapSettings | None:
        """The directory's settings when directory logins are on."""
        return self.ldap if "ldap" in self.methods else None

    @property
    def active_oidc(self) -> OidcSettings | None:
        """The OpenID provider's settings when its logins are on."""
        return self.oidc if "oidc" in self.methods else None

    def rules(self, source: str) -> tuple[GroupRule, ...]:
        found = self.active_ldap if source == "ldap" else self.active_oidc
        return found.groups if found is not None else ()


LDAP_KEYS = ("url", "groups", "start_tls", "ca_file", "bind_dn", "bind_password", "user_base",
             "user_filter", "user_dn_template", "username_attribute", "group_base",
             "group_filter", "member_of_attribute", "timeout")
OIDC_KEYS = ("discovery_url", "client_id", "client_secret", "groups", "name", "scopes",
             "groups_claim", "username_claim", "timeout", "prompt")
PROMPTS = ("login", "consent", "select_account")  # "none" is the console's own (silent) ask
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def gather(section: str, values: Mapping[str, str] | None,
           environ: Mapping[str, str]) -> dict[str, str] | None:
    """The section's values with the environment's overrides; None when neither has any."""
    keys = LDAP_KEYS if section == "ldap" else OIDC_KEYS
    merged = dict(values or {})
    for key in keys:
        value = environ.get(f"CESI_LIKE_{section.upper()}_{key.upper()}")
        if value is not None:
            merged[key] = value
    return merged if values is not None or merged else None


def _common(values: Mapping[str, str], keys: tuple[str, ...], required: tuple[str, ...],
            fail: Fail) -> tuple[tuple[GroupRule, ...], float]:
    for key in values:
        if key not in keys:
            raise fail(key, "unknown setting")
    for key in required:
        if not str(values.get(key) or "").strip():
            raise fail(key, "is required")
    try:
        rules = parse_rules(values["groups"])
    except ValueError as exc:
        raise fail("groups", str(exc)) from None
    try:
        timeout = float(values.get("timeout", 5))
        if not 0 < timeout <= 300:
            raise ValueError
    except ValueError:
        raise fail("timeout", "expected seconds, more than 0 and at most 300") from None
    return rules, timeout


def _flag(values: Mapping[str, str], key: str, fail: Fail) -> bool:
    text = str(values.get(key, "false")).strip().lower()
    if text not in (*_TRUE, *_FALSE):
        raise fail(key, "expected true or false")
    return text in _TRUE


def read_ldap(values: Mapping[str, str], fail: Fail) -> LdapSettings:
    rules, timeout = _common(values, LDAP_KEYS, ("url", "groups"), fail)
    url = values["url"].strip()
    if urlsplit(url).scheme not in ("ldap", "ldaps") or not urlsplit(url).hostname:
        raise fail("url", "expected ldap://host[:port] or ldaps://host[:port]")
    start_tls = _flag(values, "start_tls", fail)
    if start_tls and url.startswith("ldaps:"):
        raise fail("start_tls", "ldaps:// is TLS already: StartTLS is for ldap:// URLs")
    text = {key: (values.get(key) or "").strip() or None for key in LDAP_KEYS}
    if not text["user_dn_template"] and not (text["bind_dn"] and text["user_base"]):
        raise fail("user_dn_template", "give user_dn_template (direct bind), or bind_dn, "
                   "bind_password and user_base (search then bind)")
    if text["bind_dn"] and not text["bind_password"]:
        raise fail("bind_password", "is required with bind_dn (or CESI_LIKE_LDAP_BIND_PASSWORD)")
    if text["user_dn_template"] and "{username}" not in text["user_dn_template"]:
        raise fail("user_dn_template", "must contain {username}")
    for key in ("user_filter", "group_filter"):
        query = text[key]
        if query and not (query.startswith("(") and query.endswith(")")):
            raise fail(key, "an LDAP filter in parentheses, e.g. (uid={username})")
    if text["ca_file"] and not _readable(text["ca_file"]):
        raise fail("ca_file", f"cannot read {text['ca_file']}")
    return LdapSettings(
        url=url, groups=rules, start_tls=start_tls, ca_file=text["ca_file"],
        bind_dn=text["bind_dn"], bind_password=values.get("bind_password") or None,
        user_base=text["user_base"], user_filter=text["user_filter"] or "(uid={username})",
        user_dn_template=text["user_dn_template"],
        username_attribute=text["username_attribute"] or "uid", group_base=text["group_base"],
        group_filter=text["group_filter"] or "(member={dn})",
        member_of_attribute=text["member_of_attribute"] or "memberOf", timeout=timeout)


def read_oidc(values: Mapping[str, str], fail: Fail) -> OidcSettings:
    rules, timeout = _common(values, OIDC_KEYS,
                             ("discovery_url", "client_id", "client_secret", "groups"), fail)
    url = values["discovery_url"].strip()
    if urlsplit(url).scheme not in ("https", "http") or not urlsplit(url).hostname:
        raise fail("discovery_url", "expected the provider's "
                   "https://.../.well-known/openid-configuration URL")
    scopes = " ".join(values.get("scopes", "openid profile email").replace(",", " ").split())
    if "openid" not in scopes.split():
        raise fail("scopes", "must include openid")
    prompt = " ".join((values.get("prompt") or "").replace(",", " ").split())
    if any(value not in PROMPTS for value in prompt.split()):
        raise fail("prompt", f"expected one or more of {', '.join(PROMPTS)}")
    return OidcSettings(
        discovery_url=url, client_id=values["client_id"].strip(),
        client_secret=values["client_secret"], groups=rules,
        name=(values.get("name") or "").strip() or "single sign-on", scopes=scopes,
        groups_claim=(values.get("groups_claim") or "").strip() or "groups",
        username_claim=(values.get("username_claim") or "").strip() or "preferred_username",
        timeout=timeout, prompt=prompt)


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False
