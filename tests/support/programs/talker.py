"""Writes a log line, a capture-mode message, another line, and non-UTF-8 bytes; then idles.
(Lines after the message are longer than the capture token: supervisord holds back shorter
output while it looks for the token.)"""

import sys
import time

out = sys.stdout.buffer
out.write(b"plain line 100%\n<!--XSUPERVISOR:BEGIN-->the message<!--XSUPERVISOR:END-->"
          b"after the message, a longer line\n")
out.flush()
time.sleep(0.2)
out.write(b"bytes \xff\xfe in a line longer than the token, end\n")
out.flush()
time.sleep(1000)
