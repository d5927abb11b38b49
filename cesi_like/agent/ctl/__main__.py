"""`python -m cesi_like.agent.ctl`, as the `cesi-agentctl` script."""

import sys

from .cli import run

sys.exit(run())
