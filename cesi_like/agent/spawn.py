"""Turning a ProcessConfig into a running child: command lookup, pipes, fork and exec.

The child side mirrors supervisord exactly, because users read its messages in their logs: it
makes its own process group, gets fds 0-2 from our pipes and nothing else, switches user,
changes directory and umask, and on failure writes `supervisor: couldn't ...` to its stderr
and exits 127.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import shlex
import signal
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from .config import ProcessConfig

PIPE_SIZE = 1 << 18
"""Kernel pipe buffer we ask for: fewer wake-ups per MB of output than the default 64 KiB."""


class SpawnError(Exception):
    """The child could not be started; the message is what supervisord would record."""


class NotFound(SpawnError):
    pass


class NotExecutable(SpawnError):
    pass


@functools.lru_cache(maxsize=4096)
def _split(command: str) -> tuple[str, ...]:
    return tuple(shlex.split(command))


def resolve_command(command: str, path: str) -> tuple[str, list[str]]:
    """Split the command like a shell and find the program on `path` (the child's PATH),
    checking it can run."""
    try:
        argv = list(_split(command))
    except ValueError as exc:
        raise SpawnError(f"can't parse command {command!r}: {exc}") from None
    if not argv:
        raise SpawnError("command is empty")
    program = argv[0]
    found: os.stat_result | None = None
    filename = program
    if "/" in program:
        try:
            found = os.stat(program)
        except OSError:
            found = None
    else:
        for directory in path.split(os.pathsep):
            candidate = os.path.join(directory, program)
            try:
                found = os.stat(candidate)
            except OSError:
                continue
            filename = candidate
            break
    if found is None:
        raise NotFound(f"can't find command {filename!r}")
    if stat.S_ISDIR(found.st_mode):
        raise NotExecutable(f"command at {filename!r} is a directory")
    if not stat.S_IMODE(found.st_mode) & 0o111:
        raise NotExecutable(f"command at {filename!r} is not executable")
    if not os.access(filename, os.X_OK):
        raise NotExecutable(f"no permission to run command {filename!r}")
    return filename, argv


@dataclass
class ChildPipes:
    """Parent ends of a child's stdin/stdout/stderr (-1 where there is none)."""

    stdin: int
    stdout: int
    stderr: int


class SpawnEnvironment:
    """The environment supervisord gives each child: the daemon's own, then SUPERVISOR_*
    entries, then the program's `environment`. The daemon's part is encoded once and shared;
    a child's few own entries are added at each spawn (a copy kept per process cost 5 KB each,
    2.5 MB for 500 programs)."""

    def __init__(self, base: Mapping[str, str], server_url: str | None) -> None:
        self.path = base.get("PATH", os.defpath)
        self._encoded = {os.fsencode(k): os.fsencode(v) for k, v in base.items()}
        self.server_url = server_url

    def own(self, config: ProcessConfig) -> dict[str, str]:
        """What this child gets on top of the daemon's environment."""
        env = {"SUPERVISOR_ENABLED": "1"}
        url = config.serverurl or self.server_url
        if url:
            env["SUPERVISOR_SERVER_URL"] = url
        env["SUPERVISOR_PROCESS_NAME"] = config.name
        env["SUPERVISOR_GROUP_NAME"] = config.group
        env.update(config.environment)
        return env

    def search_path(self, config: ProcessConfig) -> str:
        """The PATH the child's command is looked up on."""
        return dict(config.environment).get("PATH", self.path)

    def encoded(self, config: ProcessConfig) -> dict[bytes, bytes]:
        env = dict(self._encoded)
        env.update((os.fsencode(k), os.fsencode(v)) for k, v in self.own(config).items())
        return env


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # over the per-user pipe budget: the default size still works
    return read_end, write_end


def fork_exec(
    config: ProcessConfig, filename: str, argv: list[str], env: dict[bytes, bytes]
) -> tuple[int, ChildPipes]:
    """Fork the child and return its pid and our ends of its pipes (non-blocking)."""
    opened: list[int] = []
    try:
        stdin_r, stdin_w = _pipe()
        opened += [stdin_r, stdin_w]
        stdout_r, stdout_w = _pipe()
        opened += [stdout_r, stdout_w]
        if config.redirect_stderr:
            stderr_r, stderr_w = -1, stdout_w
        else:
            stderr_r, stderr_w = _pipe()
            opened += [stderr_r, stderr_w]
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        if exc.errno == errno.EMFILE:
            raise SpawnError(f"too many open files to spawn {config.name!r}") from None
        code = errno.errorcode.get(exc.errno or 0, exc.errno)
        raise SpawnError(f"unknown error making dispatchers for {config.name!r}: {code}") from None
    try:
        child = ChildSetup(config, filename, argv, env, stdin_r, stdout_w, stderr_w)
        pid = _spawn_fast(child)
    except SubprocessError:  # the child failed before exec: replay it the way supervisord does
        pid = _spawn_reporting(child)
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        if exc.errno == errno.EAGAIN:
            raise SpawnError(
                f"Too many processes in process table to spawn {config.name!r}"
            ) from None
        code = errno.errorcode.get(exc.errno or 0, exc.errno)
        raise SpawnError(f"unknown error during fork for {config.name!r}: {code}") from None
    os.close(stdin_r)
    os.close(stdout_w)
    if stderr_r >= 0:
        os.close(stderr_w)
    for fd in (stdin_w, stdout_r, stderr_r):
        if fd >= 0:
            os.set_blocking(fd, False)
    return pid, ChildPipes(stdin_w, stdout_r, stderr_r)


@dataclass(frozen=True)
class ChildSetup:
    """Everything needed to turn the forked process into the program."""

    config: ProcessConfig
    filename: str
    argv: list[str]
    env: dict[bytes, bytes]
    stdin_fd: int
    stdout_fd: int
    stderr_fd: int


class SubprocessError(Exception):
    """The fast path's child could not exec (bad directory, user, or exec error)."""


def _spawn_fast(child: ChildSetup) -> int:
    """Start the child with the C-level vfork/exec of subprocess: a fraction of os.fork's cost,
    since the parent's page tables are not copied. Raises SubprocessError when the child failed
    before exec, OSError when it could not be forked at all."""
    config, filename, argv, env = child.config, child.filename, child.argv, child.env
    stdin_fd, stdout_fd, stderr_fd = child.stdin_fd, child.stdout_fd, child.stderr_fd
    groups = None
    if config.uid is not None and config.uid != os.getuid():
        import pwd

        entry = pwd.getpwuid(config.uid)
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    try:
        popen = subprocess.Popen(
            argv,
            executable=filename,
            stdin=stdin_fd,
            stdout=stdout_fd,
            stderr=stderr_fd,
            env=env,
            cwd=config.directory,
            umask=-1 if config.umask is None else config.umask,
            user=config.uid if groups is not None else None,
            group=config.gid if groups is not None else None,
            extra_groups=groups,
            process_group=0,
            close_fds=True,
            restore_signals=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.ENOMEM, errno.EMFILE):
            raise  # fork itself failed
        raise SubprocessError(str(exc)) from None
    # The daemon reaps every child from SIGCHLD; marking this one done keeps subprocess from
    # ever calling waitpid on it (it would steal the exit status).
    popen.returncode = 0
    return popen.pid


def _spawn_reporting(child: ChildSetup) -> int:
    """fork + a Python child that reports its failure to its stderr and exits 127, exactly as
    supervisord's child does, so users see the same `supervisor: couldn't ...` lines."""
    # Block signals across fork so that none reaches the child's inherited Python handlers
    # (which would write to the daemon's wakeup fd) before it has reset them.
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which execs or exits
            _become_child(child)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    return pid


def _become_child(child: ChildSetup) -> None:
    """Set the child up and exec; never returns."""
    config, filename, argv, env = child.config, child.filename, child.argv, child.env
    stdin_fd, stdout_fd, stderr_fd = child.stdin_fd, child.stdout_fd, child.stderr_fd
    try:
        signal.set_wakeup_fd(-1)
        for signum in signal.valid_signals():
            if signal.getsignal(signum) not in (signal.SIG_DFL, None):
                try:
                    signal.signal(signum, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass  # SIGKILL/SIGSTOP and friends cannot be changed
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.setpgrp()
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        if config.uid is not None:
            problem = _drop_privileges(config.uid, config.gid)
            if problem:
                _child_error(f"couldn't setuid to {config.uid}: {problem}")
                return
        if config.directory is not None:
            try:
                os.chdir(config.directory)
            except OSError as exc:
                code = errno.errorcode.get(exc.errno or 0, exc.errno)
                _child_error(f"couldn't chdir to {config.directory}: {code}")
                return
        if config.umask is not None:
            os.umask(config.umask)
        try:
            os.execve(filename, argv, env)
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, exc.errno)
            _child_error(f"couldn't exec {argv[0]}: {code}")
    finally:
        _child_error("child process was not spawned")
        os._exit(127)


def _child_error(message: str) -> None:  # pragma: no cover - runs in the child
    try:
        os.write(2, f"supervisor: {message}\n".encode())
    except OSError:
        pass


def _drop_privileges(uid: int, gid: int | None) -> str | None:  # pragma: no cover - child
    """Become `uid` (and its groups); the reason as text on failure, like supervisord."""
    import pwd

    if os.getuid() == uid:
        return None
    if os.getuid() != 0:
        return "Can't drop privilege as nonroot user"
    try:
        entry = pwd.getpwuid(uid)
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(gid if gid is not None else entry.pw_gid)
        os.setuid(uid)
    except (KeyError, OSError) as exc:
        return str(exc)
    return None
