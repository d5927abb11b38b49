"""Logins under attack, against `cesi-like serve` (gunicorn, 2 workers), in one run.

  race      100 wrong passwords for one user from one address, all at once: how many
            password checks ran (the limit allows `login_limit`) and how many were refused
  lockout   the same user, right password, from another address during the attack
  timing    a wrong password for an existing user vs for an unknown one (median of N, each
            from a fresh address so no limit or backoff applies): the ratio should be ~1,
            or the answer's time tells which usernames exist

The console believes X-Forwarded-For (`trusted_proxies = 1`), so one machine can play many
addresses. Usage: python bench/login.py [--attackers 100] [--samples 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from fleet import console  # bench/ is the script's directory

PASSWORD = "bench pw 1"  # fleet.console's admin password


def attempt(base: str, username: str, password: str, address: str) -> tuple[int, float]:
    """One login through the real form from `address`: (HTTP status, seconds for the POST)."""
    session = requests.Session()
    page = session.get(f"{base}/login", headers={"X-Forwarded-For": address}, timeout=60)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert match, "no CSRF token on /login"
    began = time.perf_counter()
    answer = session.post(f"{base}/login", allow_redirects=False, timeout=60,
                          headers={"X-Forwarded-For": address},
                          data={"csrf_token": match.group(1), "username": username,
                                "password": password})
    return answer.status_code, time.perf_counter() - began


def activity(base: str, token: str, action: str) -> int:
    """How many activity entries start with `action` (the page's total)."""
    page = requests.get(f"{base}/activity/", params={"action": action},
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)
    match = re.search(r'Activity <span class="muted">\((\d+)\)</span>', page.text)
    assert match, "no total on the activity page"
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attackers", type=int, default=100)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cesi-login-bench-") as tmp, \
            console(Path(tmp) / "console", [], "trusted_proxies = 1\n") as (base, token, _):
        statuses: list[int] = []
        lock = threading.Lock()

        def attack() -> None:
            status, _ = attempt(base, "admin", "not the password", "10.6.6.6")
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=attack) for _ in range(args.attackers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        checks = activity(base, token, "login.failed")
        refused = statuses.count(429)
        real, _ = attempt(base, "admin", PASSWORD, "10.7.7.7")
        known = [attempt(base, "admin", "wrong", f"10.1.{i // 250}.{i % 250}")[1]
                 for i in range(args.samples)]
        unknown = [attempt(base, f"nobody{i}", "wrong", f"10.2.{i // 250}.{i % 250}")[1]
                   for i in range(args.samples)]
    known_ms, unknown_ms = statistics.median(known) * 1000, statistics.median(unknown) * 1000
    rows = [
        (f"{args.attackers} parallel wrong logins: password checks", f"{checks} (limit 5)"),
        (f"{args.attackers} parallel wrong logins: refused (429)", str(refused)),
        ("the real user from another address meanwhile", "logged in" if real == 302
         else f"HTTP {real}"),
        ("wrong password, existing user: median", f"{known_ms:.1f} ms"),
        ("wrong password, unknown user: median", f"{unknown_ms:.1f} ms"),
        ("unknown / existing", f"{unknown_ms / known_ms:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if checks > 5 or real != 302:
        sys.exit(1)


if __name__ == "__main__":
    main()
