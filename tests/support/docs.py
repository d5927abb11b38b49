"""The worked examples in docs/, so that tests run what the docs tell people to write."""

from __future__ import annotations

import configparser
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs"


def ini_example(document: str, heading: str) -> str:
    """The first ```ini block after `### heading` in docs/`document`."""
    text = (DOCS / document).read_text()
    after = text[text.index(f"### {heading}\n"):]
    start = after.index("```ini\n") + len("```ini\n")
    return after[start:after.index("```", start)]


def ini_section(document: str, heading: str, section: str) -> dict[str, str]:
    """That example's `[section]`, as the console reads it (continuation lines kept)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ini_example(document, heading))
    return dict(parser[section])
