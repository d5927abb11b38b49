"""Reads INI files (supervisord.conf, cesi.conf) the way supervisord does, remembering where each
value came from.

supervisord uses RawConfigParser (strict=False, inline comments after whitespace) and merges
`[include]`d files into one parser. We read each file separately so that every value keeps its
file and line: a bad value is then reported as `file:line: [section] key: reason`.
"""

from __future__ import annotations

import configparser
import glob
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A config problem the user can fix; `str()` names the file, line, section and key."""

    def __init__(
        self,
        reason: str,
        *,
        path: str = "",
        line: int = 0,
        section: str = "",
        key: str = "",
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.section = section
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line:
            where += f":{self.line}"
        what = f"[{self.section}]" if self.section else ""
        if self.key:
            what += f" {self.key}"
        parts = [p for p in (where, what.strip()) if p]
        return ": ".join([*parts, self.reason])


@dataclass
class Value:
    """One `key = value` with its origin."""

    text: str
    path: str
    line: int


@dataclass
class Section:
    """One section, merged across files as supervisord's parser merges them."""

    name: str
    path: str
    line: int
    here: str
    values: dict[str, Value] = field(default_factory=dict)

    def error(self, key: str, reason: str) -> ConfigError:
        """An error pointing at `key` in this section (or at the header if the key is absent)."""
        value = self.values.get(key)
        if value is None:
            return ConfigError(reason, path=self.path, line=self.line, section=self.name, key=key)
        return ConfigError(reason, path=value.path, line=value.line, section=self.name, key=key)


_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]")
_KEY_RE = re.compile(r"^(?P<key>[^\s=:;#\[][^=:]*?)\s*[=:]")


def _line_index(text: str) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Where each section header and each key starts: line numbers for error messages."""
    sections: dict[str, int] = {}
    keys: dict[tuple[str, str], int] = {}
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _SECTION_RE.match(line)
        if header:
            current = header.group("name")
            sections.setdefault(current, number)
            continue
        key = _KEY_RE.match(line)
        if key and current:
            keys[(current, key.group("key").strip().lower())] = number
    return sections, keys


def _parse_one(path: str, sections: dict[str, Section]) -> None:
    """Parse one file and merge its sections into `sections`."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"could not read config file: {exc.strerror}", path=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8: {exc.reason}", path=path) from None
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";", "#"), strict=False, default_section="\0none"
    )
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f"file contains no section headers: {exc.line.strip()!r}", path=path, line=exc.lineno
        ) from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0]
        raise ConfigError(f"cannot parse line {line.strip()!r}", path=path, line=lineno) from None
    header_lines, key_lines = _line_index(text)
    here = os.path.dirname(os.path.abspath(path))
    for name in parser.sections():
        section = sections.get(name)
        if section is None:
            section = Section(name, path, header_lines.get(name, 0), here)
            sections[name] = section
        for key, raw in parser.items(name):
            section.values[key] = Value(raw, path, key_lines.get((name, key), 0))


@dataclass
class IniFile:
    """All sections of a config file and its includes, in order of first appearance."""

    path: str
    sections: dict[str, Section]
    included: list[str]
    warnings: list[str]

    def get(self, name: str) -> Section | None:
        return self.sections.get(name)

    def names(self, prefix: str) -> list[str]:
        """Section names starting with `prefix` (like `program:`), in file order."""
        return [name for name in self.sections if name.startswith(prefix)]


def read_ini(path: str, environ: Mapping[str, str]) -> IniFile:
    """Read `path` and the files its `[include] files=` globs name (relative to `path`)."""
    sections: dict[str, Section] = {}
    _parse_one(path, sections)
    included: list[str] = []
    warnings: list[str] = []
    include = sections.get("include")
    if include is not None:
        files = include.values.get("files")
        if files is None:
            raise include.error("files", ".ini file has [include] section, but no files setting")
        expansions = {"here": include.here, **env_expansions(environ)}
        patterns = expand(files.text, expansions, include, "files").split()
        base = os.path.dirname(os.path.abspath(path))
        for pattern in patterns:
            full = os.path.join(base, pattern)
            matches = sorted(glob.glob(full))
            if not matches:
                warnings.append(f'No file matches via include "{full}"')
            for match in matches:
                included.append(match)
                _parse_one(match, sections)
    return IniFile(os.path.abspath(path), sections, included, warnings)


def env_expansions(environ: Mapping[str, str]) -> dict[str, str]:
    """`%(ENV_X)s` names for every variable of `environ`."""
    return {f"ENV_{key}": value for key, value in environ.items()}


def expand(text: str, expansions: Mapping[str, object], section: Section, key: str) -> str:
    """Python `%` formatting as supervisord applies it to values (`%%` is a literal percent)."""
    try:
        return text % expansions
    except KeyError as exc:
        names = ", ".join(sorted(expansions))
        raise section.error(
            key,
            f"format string {text!r} contains names ({exc.args[0]}) which cannot be expanded; "
            f"available names: {names}",
        ) from None
    except (ValueError, TypeError) as exc:
        raise section.error(key, f"format string {text!r} is badly formatted: {exc}") from None
