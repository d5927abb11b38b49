"""#8.1 and #8.2 black-box through HTTP against `cesi-like serve` with two gunicorn workers:
saved session and remember cookies stop working after logout and after the user is deleted,
whichever worker answers."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from tests.support.served import serve_console

ADMIN = "http admin pw 1"


def log_in(base: str, username: str, password: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    answer = browser.post(f"{base}/login", allow_redirects=False, timeout=30, data={
        "csrf_token": token.group(1), "username": username, "password": password,
        "remember": "y"})
    assert answer.status_code == 302, answer.text
    assert {"session", "remember_token"} <= set(browser.cookies.keys())
    return browser


def replay(base: str, cookies: dict[str, str], times: int = 8) -> set[int]:
    """What a saved copy of the cookies gets, several times (so both workers answer)."""
    found = set()
    for _ in range(times):
        answer = requests.get(f"{base}/", cookies=cookies, allow_redirects=False, timeout=30)
        found.add(answer.status_code)
    return found


def csrf(browser: requests.Session, base: str) -> str:
    page = browser.get(f"{base}/account/password", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    return token.group(1)


def test_saved_cookies_die_with_logout_and_with_the_user(tmp_path: Path) -> None:
    with serve_console(tmp_path, ADMIN, "[cesi]\nlogin_backoff = 0\n", workers=2) as base:
        admin = log_in(base, "admin", ADMIN)
        headers = {"X-CSRFToken": csrf(admin, base)}
        for name, role in (("vic", "viewer"), ("oscar", "operator")):
            made = admin.post(f"{base}/api/v1/users", headers=headers, timeout=30, json={
                "username": name, "password": "user password 1", "role": role})
            assert made.status_code == 201, made.text

        # logout ends the session on the server, not only in this browser
        oscar = log_in(base, "oscar", "user password 1")
        saved = dict(oscar.cookies)
        assert replay(base, saved) == {200}
        oscar.post(f"{base}/logout", data={"csrf_token": csrf(oscar, base)}, timeout=30)
        assert replay(base, saved) == {302}
        assert replay(base, {"remember_token": saved["remember_token"]}) == {302}

        # a deleted user's cookies never come back as whoever is created next
        vic = log_in(base, "vic", "user password 1")
        saved = dict(vic.cookies)
        assert admin.delete(f"{base}/api/v1/users/vic", headers=headers,
                            timeout=30).status_code == 204
        made = admin.post(f"{base}/api/v1/users", headers=headers, timeout=30, json={
            "username": "newadmin", "password": "user password 1", "role": "admin"})
        assert made.status_code == 201
        assert replay(base, saved) == {302}
        assert replay(base, {"remember_token": saved["remember_token"]}) == {302}
