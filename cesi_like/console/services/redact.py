"""Text from a node, made fit to keep and show: quoted values left out.

A node's error can quote a line of its config (supervisord and cesi-agentd both name the value
they could not parse), and a config holds secrets (`environment=DB_PASSWORD="..."`). What the
console stores and shows of a node's words (activity entries, job messages, fault texts)
keeps the shape of the message and drops what stood between quotes.
"""

from __future__ import annotations

import re

# a quote that opens after a space or punctuation (not an apostrophe inside a word: can't),
# up to the same quote closing before a space, punctuation or the end
_QUOTED = re.compile(r"""(?<![\w'"])(['"])(?:(?!\1).)*\1(?!\w)""", re.S)


def quoted(text: str) -> str:
    """`text` with every quoted value replaced by an ellipsis in the same quotes."""
    return _QUOTED.sub(lambda found: f"{found.group(1)}…{found.group(1)}", text)
