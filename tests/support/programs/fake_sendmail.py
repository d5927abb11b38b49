"""A sendmail stand-in: appends the message it is given on stdin to the file named first."""

import sys

with open(sys.argv[1], "a") as out:
    out.write(sys.stdin.read())
    out.write("\n--- end of message ---\n")
