"""`supervisor.*` methods on logs: the main log and each process's stdout/stderr logs."""

from __future__ import annotations

import os
from typing import Any

from ...supervisor_rpc.states import Fault
from ..logs import BadArguments, read_range, tail
from .base import NamespaceBase, Result, text
from .dispatch import RPCError


class LogMethods(NamespaceBase):
    """readLog, clearLog, read/tail/clear of process logs (and their deprecated aliases)."""

    def _main_log(self) -> str:
        path = self._sup.config.server.logfile
        if path is None or not os.path.exists(path):
            raise RPCError(Fault.NO_FILE, path)
        return path

    async def readLog(self, offset: int, length: int) -> str:
        """Read length bytes from the main log starting at offset.

        @param int offset  offset to start reading from.
        @param int length  number of bytes to read from the log.
        @return string result  bytes of log
        """
        self._update()
        return self._read(self._main_log(), offset, length)

    async def readMainLog(self, offset: int, length: int) -> str:
        """Deprecated alias of readLog.

        @param int offset  offset to start reading from.
        @param int length  number of bytes to read from the log.
        @return string result  bytes of log
        """
        return await self.readLog(offset, length)

    @staticmethod
    def _read(path: str, offset: Any, length: Any) -> str:
        try:
            return text(read_range(path, int(offset), int(length)))
        except BadArguments:
            raise RPCError(Fault.BAD_ARGUMENTS) from None
        except (OSError, ValueError, TypeError):
            raise RPCError(Fault.FAILED) from None

    async def clearLog(self) -> bool:
        """Clear the main log.

        @return boolean result always returns True unless error
        """
        self._update()
        self._main_log()
        if self._sup.log.file is not None:
            self._sup.log.file.clear()
        return True

    def _log_path(self, name: str, channel: str) -> str | None:
        return self._sup.channel(self._process(name), channel).path

    def _read_process_log(self, name: str, offset: int, length: int, channel: str) -> str:
        path = self._log_path(name, channel)
        if path is None or not os.path.exists(path):
            raise RPCError(Fault.NO_FILE, path)
        return self._read(path, offset, length)

    def _tail_process_log(self, name: str, offset: int, length: int, channel: str) -> list[Any]:
        path = self._log_path(name, channel)
        if path is None or not os.path.exists(path):
            return ["", 0, False]
        data, new_offset, overflow = tail(path, int(offset), int(length))
        return [text(data), new_offset, overflow]

    async def readProcessStdoutLog(self, name: str, offset: int, length: int) -> str:
        """Read length bytes from a process's stdout log starting at offset.

        @param string name  the name of the process (or group:name)
        @param int offset  offset to start reading from
        @param int length  number of bytes to read from the log
        @return string result  bytes of log
        """
        self._update()
        return self._read_process_log(name, offset, length, "stdout")

    async def readProcessLog(self, name: str, offset: int, length: int) -> str:
        """Deprecated alias of readProcessStdoutLog.

        @param string name  the name of the process (or group:name)
        @param int offset  offset to start reading from
        @param int length  number of bytes to read from the log
        @return string result  bytes of log
        """
        return await self.readProcessStdoutLog(name, offset, length)

    async def readProcessStderrLog(self, name: str, offset: int, length: int) -> str:
        """Read length bytes from a process's stderr log starting at offset.

        @param string name  the name of the process (or group:name)
        @param int offset  offset to start reading from
        @param int length  number of bytes to read from the log
        @return string result  bytes of log
        """
        self._update()
        return self._read_process_log(name, offset, length, "stderr")

    async def tailProcessStdoutLog(
        self, name: str, offset: int, length: int
    ) -> list[Any]:
        """Tail a process's stdout log: [bytes, new offset, overflow].

        @param string name  the name of the process (or group:name)
        @param int offset  offset to start reading from
        @param int length  maximum number of bytes to return
        @return array result  [string bytes, int offset, bool overflow]
        """
        self._update()
        return self._tail_process_log(name, offset, length, "stdout")

    async def tailProcessLog(self, name: str, offset: int, length: int) -> list[Any]:
        """Deprecated alias of tailProcessStdoutLog.

        @param string name  the name of the process (or group:name)
        @param int offset  offset to start reading from
        @param int length  maximum number of bytes to return
        @return array result  [string bytes, int offset, bool overflow]
        """
        return await self.tailProcessStdoutLog(name, offset, length)

    async def tailProcessStderrLog(
        self, name: str, offset: int, length: int
    ) -> list[Any]:
        """Tail a process's stderr log: [bytes, new offset, overflow].

        @param string name  the name of the process (or group:name)
        @param int offset  offset to start reading from
        @param int length  maximum number of bytes to return
        @return array result  [string bytes, int offset, bool overflow]
        """
        self._update()
        return self._tail_process_log(name, offset, length, "stderr")

    async def clearProcessLogs(self, name: str) -> bool:
        """Clear both log files of a process.

        @param string name  the name of the process (or group:name)
        @return boolean result  always true unless error
        """
        self._update()
        process = self._process(name)
        try:
            for channel in ("stdout", "stderr"):
                self._sup.channel(process, channel).clear()
        except OSError:
            raise RPCError(Fault.FAILED, name) from None
        return True

    async def clearProcessLog(self, name: str) -> bool:
        """Deprecated alias of clearProcessLogs.

        @param string name  the name of the process (or group:name)
        @return boolean result  always true unless error
        """
        return await self.clearProcessLogs(name)

    async def clearAllProcessLogs(self) -> list[Result]:
        """Clear the logs of every process.

        @return array result  an array of process status info structs
        """
        self._update()
        return await self._each(self._all_processes(), lambda p: True,
                                lambda p: self.clearProcessLogs(p.namespec))
