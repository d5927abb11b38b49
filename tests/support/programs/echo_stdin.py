"""Echo each line read from stdin to stdout, prefixed (tests sendProcessStdin)."""

import sys

for line in sys.stdin:
    sys.stdout.write("got: " + line)
    sys.stdout.flush()
