"""The embedded data folder's lock: chDB opens a folder from one process only, so odnos says so plainly.

Without it a second process gets chDB's bare "Error initializing EmbeddedServer" (the real reason
goes only to stderr). The holder writes its pid and what it is (``odnos serve on http://...``) into
the lock file, so the refusal can tell the user which process to stop or where to send the command.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tracker.errors import StoreUnavailable


class FolderLock:
    """An exclusive, process-wide lock on a data folder, released when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, holder: str) -> None:
        """Take the lock or raise StoreUnavailable naming the process that holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another odnos process"
            os.close(fd)
            raise StoreUnavailable(
                f"the embedded store in {self.path.parent} is in use by {other}. chDB opens a folder "
                "from one process only: stop that process first, or use another ODNOS_DATA_DIR",
                code="store_locked") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({holder})\n".encode(), 0)
        self._fd = fd

    def describe(self, holder: str) -> None:
        """Update what the holder says it is (for example once the server knows its URL)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"pid {os.getpid()} ({holder})\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
