"""Exit with the code in argv[1] after argv[2] seconds (default 0), printing a line first."""

import sys
import time

print(f"exit_with {sys.argv[1]}", flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
sys.exit(int(sys.argv[1]))
