"""The console served by gunicorn exactly as `cesi-like serve` runs it, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@contextlib.contextmanager
def serve_console(tmp_path: Path, admin_password: str, config: str | None = None,
                  workers: int = 2, port: int = 0) -> Iterator[str]:
    """Run `cesi-like serve` on a free port (or `port`, when a peer must know it first) in
    `tmp_path`; yields its base URL."""
    with serve_console_process(tmp_path, admin_password, config, workers, port=port) as (
            base, _server):
        yield base


@contextlib.contextmanager
def serve_console_process(tmp_path: Path, admin_password: str, config: str | None = None,
                          workers: int = 2, database: str | None = None, port: int = 0,
                          ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve_console`, also yielding the server (the leader of its own process group, which
    holds the workers and poller processes too); `database` instead of SQLite in tmp_path."""
    env = {**os.environ, "CESI_LIKE_DATABASE": database or f"sqlite:///{tmp_path}/e2e.db",
           "CESI_LIKE_ADMIN_PASSWORD": admin_password}
    env.pop("CESI_LIKE_CONFIG", None)
    args = []
    if config is not None:
        (tmp_path / "cesi.conf").write_text(config)
        args = ["--config", str(tmp_path / "cesi.conf")]
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 - lives with the server
    server = subprocess.Popen([sys.executable, "-m", "cesi_like.console.cli", *args, "serve",
                               "--bind", f"127.0.0.1:{port}", "--workers", str(workers)], env=env,
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)",
                              (tmp_path / "gunicorn.log").read_text())
            if match:
                break
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not start")
        yield match.group(1), server
    finally:
        with contextlib.suppress(ProcessLookupError):  # a test may have killed it already
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not "
                                    "installed (.ci/run installs it with apt)")


def launch(playwright: Any) -> Any:
    """Debian's chromium, headless, without the background traffic this machine refuses."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"])


def log_in(page: Any, console: str, password: str, username: str = "admin") -> None:
    """Through the console's login form."""
    page.goto(f"{console}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button.primary")
