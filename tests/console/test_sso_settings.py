"""The `[ldap]` and `[oidc]` sections: what they accept, the errors that name file, line and
key, the environment's overrides, and the group map's arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from cesi_like.console.settings import load, login_methods
from cesi_like.console.sso.groups import Grant, grant_for, parse_rules
from cesi_like.console.storage.models import Role
from cesi_like.inifile import ConfigError

LDAP = """[ldap]
url = ldap://ldap.example.org
start_tls = true
bind_dn = cn=cesi,ou=services,dc=example,dc=org
user_base = ou=people,dc=example,dc=org
groups =
    cn=ops,ou=groups,dc=example,dc=org -> admin
    web -> operator: staging, production
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cesi.conf"
    path.write_text(text)
    return str(path)


def test_ldap_section_with_the_secret_from_the_environment(tmp_path: Path) -> None:
    settings = load(write(tmp_path, LDAP), {"CESI_LIKE_LDAP_BIND_PASSWORD": "s3cret"})
    assert settings.ldap is not None
    assert settings.ldap.bind_password == "s3cret" and settings.ldap.can_search
    assert [r.group for r in settings.ldap.groups] == ["cn=ops,ou=groups,dc=example,dc=org",
                                                      "web"]
    assert login_methods(settings) == {"local", "ldap"}


@pytest.mark.parametrize("text, environ, where", [
    (LDAP, {}, "cesi.conf:1: [ldap] bind_password: is required with bind_dn"),
    (LDAP.replace("    web -> operator", "    web => operator"), {"CESI_LIKE_LDAP_BIND_PASSWORD":
     "x"}, "cesi.conf:6: [ldap] groups: line 3: expected 'GROUP -> ROLE'"),
    (LDAP.replace("-> admin", "-> root"), {"CESI_LIKE_LDAP_BIND_PASSWORD": "x"},
     "[ldap] groups: line 2: the role must be admin, operator or viewer, not 'root'"),
    (LDAP + "colour = blue\n", {"CESI_LIKE_LDAP_BIND_PASSWORD": "x"},
     "cesi.conf:9: [ldap] colour: unknown setting"),
    (LDAP, {"CESI_LIKE_LDAP_BIND_PASSWORD": "x", "CESI_LIKE_LDAP_URL": "http://x"},
     "CESI_LIKE_LDAP_URL: expected ldap://host[:port] or ldaps://host[:port]"),
    ("[cesi]\nlogin_methods = local, oidc\n", {},
     "cesi.conf: [cesi] login_methods: oidc is not configured"),
    ("[oidc]\ndiscovery_url = https://id.example.org/.well-known/openid-configuration\n"
     "client_id = cesi\nclient_secret = x\nscopes = profile\ngroups = a -> viewer\n", {},
     "cesi.conf:5: [oidc] scopes: must include openid"),
    ("[oidc]\ndiscovery_url = https://id.example.org/.well-known/openid-configuration\n"
     "client_id = cesi\nclient_secret = x\nprompt = none\ngroups = a -> viewer\n", {},
     "cesi.conf:5: [oidc] prompt: expected one or more of login, consent, select_account"),
])
def test_a_broken_section_names_file_line_and_key(tmp_path: Path, text: str,
                                                   environ: dict[str, str], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text), environ)
    assert where in str(caught.value)


def test_oidc_from_the_environment_alone() -> None:
    settings = load(None, {
        "CESI_LIKE_OIDC_DISCOVERY_URL": "https://id.example.org/.well-known/openid-configuration",
        "CESI_LIKE_OIDC_CLIENT_ID": "cesi", "CESI_LIKE_OIDC_CLIENT_SECRET": "x",
        "CESI_LIKE_OIDC_GROUPS": "ops -> admin", "CESI_LIKE_OIDC_NAME": "Keycloak",
        "CESI_LIKE_LOGIN_METHODS": "oidc"})
    assert settings.oidc is not None and settings.oidc.name == "Keycloak"
    assert login_methods(settings) == {"oidc"}
    assert (settings.oidc.prompt, settings.oidc.offline) == ("", False)  # asked for neither


def test_the_group_map_gives_the_highest_role_and_the_union_of_environments() -> None:
    rules = parse_rules("""
        admins -> admin
        web -> operator: staging
        readers -> viewer: production
        auditors -> viewer
    """)
    assert grant_for(["cn=web,ou=groups,dc=x", "CN=Readers,ou=groups,dc=x"], rules) == Grant(
        Role.OPERATOR, ("production", "staging"))
    assert grant_for(["web", "auditors"], rules) == Grant(Role.OPERATOR, ())  # all of them
    assert grant_for(["admins", "web"], rules) == Grant(Role.ADMIN, ())
    assert grant_for(["cn=other,dc=x"], rules) is None
    assert grant_for([], rules) is None
    with pytest.raises(ValueError, match="cannot be limited to environments"):
        parse_rules("ops -> admin: prod")
    with pytest.raises(ValueError, match="no rule"):
        parse_rules("# nothing\n")
