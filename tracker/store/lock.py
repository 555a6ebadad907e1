"""One process per folder: the flock-plus-pid lock of the embedded store's folder and of each spool.

chDB opens a data folder from one process only, and a spool directory must have one writer. Without
a lock of our own a second process gets chDB's bare "Error initializing EmbeddedServer" (the real
reason goes only to stderr), or two workers append to one spool. The holder writes its pid and what
it is (``odnos serve on http://...``) into the lock file, so the refusal can tell the user which
process to stop or where to send the command. A server's worker (a multiprocessing child: granian
forks it) names its parent and the parent's command line instead, since stopping the server is
what frees the folder. ``flock`` is released by the kernel when the holder dies, however it dies,
so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shlex
from collections.abc import Callable
from pathlib import Path

from tracker.errors import StoreUnavailable


def _store_busy(path: Path, other: str) -> Exception:
    return StoreUnavailable(
        f"the embedded store in {path.parent} is in use by {other}. chDB opens a folder "
        "from one process only: stop that process first, or use another ODNOS_DATA_DIR",
        code="store_locked")


class FolderLock:
    """An exclusive lock on the file ``path``, held until ``release`` or the death of the process.

    ``busy(path, other)`` builds the exception ``acquire`` raises when another process holds it;
    ``other`` is what that process wrote about itself (``pid 123 (odnos serve on ...)``). The
    default is the embedded store's ``StoreUnavailable``.
    """

    def __init__(self, path: Path, busy: Callable[[Path, str], Exception] = _store_busy) -> None:
        self.path = path
        self._busy = busy
        self._fd: int | None = None

    def acquire(self, holder: str = "") -> None:
        """Take the lock, or raise what ``busy`` builds, naming the process that holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another odnos process"
            os.close(fd)
            raise self._busy(self.path, other) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.describe(holder)

    def describe(self, holder: str) -> None:
        """Update what the holder says it is (for example once the server knows its URL)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{_process_to_stop(holder)}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def is_held(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` now (probed without creating the file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's shared lock, if it got one
    return False


def main_pid() -> int:
    """This process, or for a server's worker (a multiprocessing child) the server that forked it."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def _process_to_stop(holder: str) -> str:
    """``pid N (what)``: this process, or for a server's worker the server, with its command line."""
    pid, details = main_pid(), [holder]
    if pid != os.getpid():
        details.append(_command_line(pid))
    what = "; ".join(detail for detail in details if detail)
    return f"pid {pid}{f' ({what})' if what else ''}"


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            args = [arg.decode(errors="replace") for arg in file.read().split(b"\0") if arg]
    except OSError:  # not Linux, or the process is gone
        return ""
    return f"started as `{shlex.join(args)[:300]}`" if args else ""
