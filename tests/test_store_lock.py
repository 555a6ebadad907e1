"""The one folder lock, held by another real process: each caller's refusal, and release on death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tracker.errors import StoreUnavailable
from tracker.ingest.spool import LOCK_FILE, Spool, SpoolLocked
from tracker.store.lock import FolderLock

HOLD = """
import sys, time
from pathlib import Path
kind, path = sys.argv[1], Path(sys.argv[2])
if kind == "store":
    from tracker.store.lock import FolderLock
    FolderLock(path).acquire("odnos serve on http://127.0.0.1:8000")
else:
    from tracker.ingest.spool import Spool
    spool = Spool(path, max_bytes=1000)
print("held", flush=True)
time.sleep(120)
"""


@contextmanager
def held_by_child(kind: str, path: Path) -> Iterator[subprocess.Popen]:
    """Another process holds the lock until the block ends; it is then killed with SIGKILL."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(path)], stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert child.stdout.readline().strip() == "held"
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_the_store_lock_names_the_process_holding_it_and_frees_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "clickhouse.lock"
    with held_by_child("store", path) as child:
        with pytest.raises(StoreUnavailable) as refused:
            FolderLock(path).acquire("odnos sql")
        assert refused.value.code == "store_locked"
        assert f"in use by pid {child.pid} (odnos serve on http://127.0.0.1:8000)" in refused.value.message
        assert str(tmp_path) in refused.value.message
    lock = FolderLock(path)
    lock.acquire("odnos sql")  # the kernel released the dead holder's lock
    assert path.read_text() == f"pid {os.getpid()} (odnos sql)\n"
    lock.describe("odnos serve on http://x")
    assert path.read_text() == f"pid {os.getpid()} (odnos serve on http://x)\n"
    lock.release()


def test_the_spool_lock_keeps_its_own_error_and_frees_when_the_holder_dies(tmp_path: Path) -> None:
    with held_by_child("spool", tmp_path) as child:
        with pytest.raises(SpoolLocked) as refused:
            Spool(tmp_path, max_bytes=1000)
        assert (refused.value.status, refused.value.code) == (503, "spool_locked")
        assert refused.value.message == f"Spool {tmp_path} is in use by another process (pid {child.pid})."
        assert (tmp_path / LOCK_FILE).read_text() == f"pid {child.pid}\n"
    Spool(tmp_path, max_bytes=1000).close()


def test_the_same_lock_file_excludes_a_second_holder_in_this_process(tmp_path: Path) -> None:
    """flock belongs to the open file: two spools of one process on one folder exclude each other too."""
    first = FolderLock(tmp_path / "lock", busy=lambda path, other: ValueError(f"{path.name}: {other}"))
    first.acquire()
    with pytest.raises(ValueError, match=f"lock: pid {os.getpid()}$"):
        FolderLock(tmp_path / "lock", busy=lambda path, other: ValueError(f"{path.name}: {other}")).acquire()
    first.acquire()  # taking a lock already held by this object is a no-op
    first.release()
    again = FolderLock(tmp_path / "lock")
    again.acquire()
    again.release()
