"""Print a coloured line, then sleep (tests strip_ansi)."""

import time

print("\x1b[31mred\x1b[0m plain", flush=True)
while True:
    time.sleep(60)
