"""Programs disabled for good (`cesi-agentctl disable`), kept across reloads, restarts and
crashes of the agent.

supervisord has no such thing (its issue #591): `autostart=false` is undone by the next edit
of the config, and a stopped program comes back with the next `start all`. A disabled program
is stopped and stays so: autostart, autorestart, `start all`, a reload and an agent restart
all pass it by, and a start of it is refused.

The set is a JSON file (`[supervisord] cesi_statefile`, by default beside the pidfile),
replaced atomically on every change and synced before the change is reported done, so a
crash at any moment leaves either the old set or the new one. Names are `group:name`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

VERSION = 1


class StateFileError(Exception):
    """The state file exists but cannot be read as one (its path is in the message)."""


class DisabledStore:
    """The `group:name` of every disabled process, mirrored in `path`."""

    def __init__(self, path: str, names: set[str] | None = None) -> None:
        self.path = path
        self._names = set(names or ())

    @classmethod
    def load(cls, path: str) -> DisabledStore:
        """Read `path`; a missing file is an empty set. Raises StateFileError."""
        try:
            with open(path, "rb") as handle:
                import json  # only when there is a file: most hosts never disable anything

                document = json.load(handle)
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise StateFileError(f"{path}: cannot read the state file: {exc}") from None
        names = document.get("disabled") if isinstance(document, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise StateFileError(f'{path}: not a cesi-agentd state file (no "disabled" list '
                                 "of names)")
        return cls(path, set(names))

    def __contains__(self, namespec: object) -> bool:
        return namespec in self._names

    def names(self) -> list[str]:
        return sorted(self._names)

    def update(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Change the set, file first: if writing fails (OSError), nothing changes."""
        names = (self._names | set(add)) - set(remove)
        if names != self._names:
            self._write(names)
            self._names = names

    def _write(self, names: set[str]) -> None:
        import json

        directory = os.path.dirname(os.path.abspath(self.path))
        document = {"written_by": "cesi-agentd", "version": VERSION,
                    "disabled": sorted(names)}
        temporary = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=1)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable (a crash of the machine right after it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
