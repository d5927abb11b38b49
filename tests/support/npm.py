"""Packages from the npm registry for the tests that drive JavaScript clients (installed once
per session; Node.js and npm come from Debian's packages in CI, see .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def install(folder: Path, *packages: str) -> Path:
    """`npm install` the packages into `folder`; skip the test when there is no npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed (.ci/run installs them with apt)")
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                           *packages], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder
