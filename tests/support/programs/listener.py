"""An event listener built on supervisor.childutils (PyPI `supervisor`), as real listeners
are; writes each event it gets to a file.

usage: listener.py OUT [fail-first|garbage|stuck|fail-until]
  fail-first  answer FAIL to the first event (it must come again), OK after
  garbage     answer the first event with something that is not a RESULT
  stuck       never answer the first event
  fail-until  answer FAIL until a file OUT.ok exists, OK after
"""

import os
import sys
import time

from supervisor import childutils

out_path = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else ""
count = 0
while True:
    headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
    with open(out_path, "a") as out:
        out.write(f"{headers['eventname']}|{headers['serial']}|{headers['pool']}|"
                  f"{headers['poolserial']}|{headers['ver']}|{payload!r}\n")
    count += 1
    rejected = ((count == 1 and mode == "fail-first")
                or (mode == "fail-until" and not os.path.exists(out_path + ".ok")))
    if rejected:
        childutils.listener.fail(sys.stdout)
    elif mode == "stuck":
        time.sleep(100_000)
    elif count == 1 and mode == "garbage":
        sys.stdout.write("what protocol?\n")
        sys.stdout.flush()
    else:
        childutils.listener.ok(sys.stdout)
