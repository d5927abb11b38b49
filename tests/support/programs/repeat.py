"""Write TEXT (with Python escapes: \\n, \\u20ac) COUNT times, then wait to be stopped: a log
whose content is known byte for byte."""

import sys
import time

text, count = sys.argv[1].encode().decode("unicode_escape"), int(sys.argv[2])
sys.stdout.write(text * count)
sys.stdout.flush()
while True:
    time.sleep(1000)
