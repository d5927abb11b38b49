"""A real OpenID Connect provider for the SSO tests: node-oidc-provider from the npm registry,
run by Node.js (see oidc_provider.mjs beside this file), with the console registered as a
confidential client."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
PACKAGE = "oidc-provider@8.8.1"  # the 8.x line runs on Debian's Node.js 18 as well as 20
CLIENT_ID, CLIENT_SECRET = "cesi-like", "a client secret of at least 32 characters"


@dataclass
class Provider:
    issuer: str
    folder: Path

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def accounts(self, groups: dict[str, list[str]]) -> None:
        """Who may sign in (any password, as the provider's development pages do) and the
        groups claim each gets; read at every sign-in."""
        (self.folder / "accounts.json").write_text(json.dumps(
            {name: {"groups": found} for name, found in groups.items()}))

    def tamper(self, mode: str) -> None:
        """"audience", "expired", "signature", or "" to stop (see oidc_provider.mjs)."""
        (self.folder / "tamper.txt").write_text(mode)


@contextmanager
def oidc_provider(packages: Path, folder: Path, console_url: str,
                  refresh: bool = False) -> Iterator[Provider]:
    """Start the provider (its packages installed in `packages`) for a console at
    `console_url`; stopped afterwards. With `refresh`, the console's client may use refresh
    tokens (offline_access), and each use gives a new one (the old one then fails)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = packages / SCRIPT.name
    shutil.copy(SCRIPT, script)  # beside node_modules, where its imports are found
    config = folder / "provider.json"
    config.write_text(json.dumps({
        "accounts": str(folder / "accounts.json"), "tamper": str(folder / "tamper.txt"),
        "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                     "redirect_uris": [f"{console_url}/login/oidc/callback"],
                     "post_logout_redirect_uris": [f"{console_url}/login"],
                     "grant_types": ["authorization_code", *(["refresh_token"] if refresh
                                                             else [])],
                     "response_types": ["code"],
                     "token_endpoint_auth_method": "client_secret_basic"}]}))
    log = (folder / "provider.log").open("w+")
    process = subprocess.Popen(["node", str(script), str(config)], cwd=packages,
                               stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            log.seek(0)
            raise AssertionError(f"the OpenID provider did not start: {log.read()[-2000:]}")
        provider = Provider(json.loads(line)["issuer"], folder)
        provider.accounts({})
        provider.tamper("")
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
