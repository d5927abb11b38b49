"""`make screenshots` works: demo/screenshots.py drives the demo fleet in chromium and writes
every page in both themes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.served import needs_chromium

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_chromium


def test_the_screenshot_script_writes_every_page_in_both_themes(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "demo" / "screenshots.py"),
                           str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CESI_SCREENSHOT_SETTLE": "0.3"})
    assert done.returncode == 0, done.stderr[-3000:]
    names = {path.name for path in tmp_path.glob("*.png")}
    for page in ("dashboard", "processes", "node", "process", "job", "alerts", "alert-rules",
                 "processes-phone"):
        for theme in ("light", "dark"):
            assert f"{page}-{theme}.png" in names
    assert all(path.stat().st_size > 10_000 for path in tmp_path.glob("*.png"))
